"""The process papermill runs in under `sclab run`: the notebook dies with its runner.

The runner (`sclab run`) handles SIGINT, SIGTERM and SIGHUP itself, but SIGKILL, a crash or an
OOM kill end it without a word, and papermill and its kernel live in sessions of their own,
so nothing would reach them. This launcher runs papermill's command line in-process next to a
watchdog thread: once its parent is no longer the runner, it kills the kernel and everything
below it, marks the run directory interrupted (kept as `<preset>.failed/`) and exits. It is a
child subreaper on Linux, so a kernel's subprocess whose parent died is still its descendant.

    $ python -m sclab.runs.launch RUNNER_PID -- NOTEBOOK OUTPUT -f params.yaml -k python3
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from .procs import descendants, kill_tree, set_subreaper

POLL_S = 0.2  # how often the watchdog looks at its parent: the clean-up starts within this


def _orphaned(runner: int) -> None:
    """The runner is gone: nobody else will stop the kernel or record the run."""
    try:
        print(f"sclab: the runner (pid {runner}) is gone: stopping the notebook", file=sys.stderr, flush=True)
        kill_tree({p.pid: p for p in descendants(os.getpid())})
        run_dir = os.environ.get("SCLAB_RUN_DIR")
        if run_dir and Path(run_dir).is_dir():
            from .execute import finish_run  # this process holds the inherited run lock

            finish_run(Path(run_dir), "interrupted", stopped_by=f"its runner (pid {runner}) died")
    finally:
        os._exit(1)  # at once: papermill's own exit path would wait on the dead kernel


def _watch(runner: int, done: threading.Event) -> None:
    while not done.wait(POLL_S):
        if os.getppid() != runner:  # re-parented: the runner died (or died before we started)
            _orphaned(runner)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit("usage: python -m sclab.runs.launch RUNNER_PID -- PAPERMILL_ARGS...")
    runner, cmd = int(argv[0]), argv[2:]
    set_subreaper()
    done = threading.Event()
    # not a daemon: if papermill exits while the clean-up runs, the interpreter waits for it
    threading.Thread(target=_watch, args=(runner, done), name="sclab-watchdog").start()
    try:
        from papermill.cli import papermill

        papermill.main(args=cmd, prog_name="papermill")  # click: ends with SystemExit(status)
    finally:
        done.set()


if __name__ == "__main__":
    main()
