"""Time-bounded math-verify calls that work from any thread.

math-verify 0.9.0 (github.com/huggingface/Math-Verify) bounds its own parse/verify with
SIGALRM, which only works in the main thread (REFERENCES.md, Known traps): a sampler's
reward callback or a thread pool would raise. So sclab turns those timeouts off and runs
every math-verify call in a daemon worker thread joined with a timeout instead.

    >>> from sclab.grading.bounded import bounded
    >>> bounded(lambda a, b: a == b, (1, 1), timeout=1.0)
    (True, False)
"""
from __future__ import annotations

import collections
import logging
import threading

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0  # seconds per math-verify call; sympy's simplify can run for minutes

# (gold, answer) pairs whose math-verify call timed out (verdict False); an extraction that
# timed out is recorded as ("(extraction)", first 200 characters of the response). Newest
# last, bounded so a long run cannot grow it without limit.
TIMEOUTS: collections.deque[tuple[str, str]] = collections.deque(maxlen=1000)


def bounded(fn, args: tuple, timeout: float):
    """Run fn(*args) in a daemon thread for at most `timeout` s: (result, timed_out).

    An exception inside fn is a None result (math-verify raises on odd sympy objects; the
    callers read that as "not equal" / "nothing extracted"). A timed-out worker cannot be
    killed and finishes in the background; being a daemon it never keeps the interpreter alive."""
    box: dict = {}

    def work():
        try:
            box["result"] = fn(*args)
        except Exception:
            logger.debug("math-verify failed on %r", args, exc_info=True)
            box["result"] = None

    worker = threading.Thread(target=work, name="sclab-math-verify", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return None, True
    return box.get("result"), False
