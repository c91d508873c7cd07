"""A sandbox for model-written code: each program in a fresh, confined process, graded by the
harness, never by the program.

Popular harnesses run model code in their own process with rlimits and a few disabled
functions - "NOT a security sandbox" in human-eval's own words: ctypes, `posix`, `os.exec*`
or frame-walking escape it, and in RL a sample can write "passed" into the results (reward
hacking). Self-Debug (arXiv 2304.05128) and SCoRe's MBPP runs (arXiv 2409.12917) execute
every sample; this is where sclab does it.

    >>> from sclab.sandbox import execute
    >>> execute("def f(x):\\n    return x + 1", "assert f(1) == 2").status  # doctest: +SKIP
    'passed'

Mechanism. sandlock 0.9 (Landlock + seccomp + a seccomp-notify supervisor): maintained,
unprivileged, a pip dependency, and on this machine it held every limit below. bubblewrap
needs a setuid helper or unprivileged user namespaces (often disabled in CI containers) and is
not installed here; no fallback is used, and `available()` names what is missing instead.

Threat model - what a program can and cannot do:
- Its own process, started fresh for each run (`-S -s -B`, a clean environment, cwd = a new
  scratch folder, removed afterwards unless the harness itself is killed), in its own process
  group; the whole tree is SIGKILLed on the wall-clock timeout (sclab.runs.procs.kill_tree),
  whatever is left when the runner exits, even in another group, is killed by sandlock, and
  parent-death signals take the runner and its forks down with a killed harness.
- Filesystem (Landlock): reads only the interpreter, the system libraries and /dev/null,
  /dev/urandom; writes only the scratch folder. /proc, /etc, /home, /root are unreadable.
- Network: no outbound connection, UDP or bind (sandlock's network policy, empty allowlists).
- Processes and signals: `processes` live processes (sandlock) and RLIMIT_NPROC; setsid is
  refused; Landlock's scoping stops signals to processes outside the sandbox, so a program
  cannot kill the harness; ptrace, process_vm_*, mount, unshare, bpf, ... are refused
  (sandlock's seccomp blocklist).
- Resources: RLIMIT_AS and sandlock's memory total, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE,
  no core dumps. The limits are set soft = hard before the program runs.
- Identity: started as root (CI runs as root), the runner drops to uid/gid 65534 (nobody)
  before the program runs, with no supplementary groups, and re-arms the parent-death signal.
- The verdict (sclab.sandbox.runner): two random tokens per run arrive on stdin, which is
  read in full and closed before the program exists; the runner writes P only after the
  program and the test ran without an exception, else F, on a channel separate from the
  program's output. The parent alone decides: P, no F, exit status 0, no timeout. So an early
  `os._exit(0)`, `SystemExit(0)`, an atexit hook, a signal or a "passed" printed anywhere fail.
  An audit hook (which Python cannot remove) stops the program reading the tokens: frames,
  trace/profile hooks, gc's walks, new code objects and native-code modules (ctypes) are off.
  The program and the test are compiled separately; the test sees builtins as they were
  before the program ran.

Cost: ~85-110 ms a program one at a time, ~45 ms on 2 workers (HumanEval's 164 canonical
solutions on 2 shared cores; benchmarks/sandbox_humaneval.py).

Out of scope: the test's own semantics. An object whose `__eq__` is always true, or a patch
of a module the test uses (math.isclose), passes a test as it would in human-eval; such a
reward hack is the grader's, not the sandbox's, to detect. A Python memory-safety bug could
let a program reach the tokens; it would still be confined by the kernel (all of the above
but the verdict), and would fake only its own verdict.
"""
from .execute import (PRELOAD, STATUSES, UNPRIVILEGED, Limits, Outcome, SandboxError, SandboxUnavailable,
                      available, execute, execute_many, interpreter)

__all__ = ["execute", "execute_many", "Limits", "Outcome", "STATUSES", "available", "interpreter",
           "SandboxError", "SandboxUnavailable", "UNPRIVILEGED", "PRELOAD"]
