"""Running one program and its test in the sandbox, and many of them on a small worker pool.

`execute(program, test)` starts the sandbox's Python on `runner.py` inside sandlock, feeds it
two fresh verdict tokens and the sources on stdin, reads the verdict channel (the child's
stdout) and its output (stderr, where fd 1 is pointed too), and turns what it saw into an
`Outcome`. The verdict is the parent's: "passed" needs the run's P token on the channel, no F
token, exit status 0 and no timeout; everything else fails.

    >>> execute("def f(x):\\n    return x + 1", "assert f(1) == 2").status  # doctest: +SKIP
    'passed'
"""
from __future__ import annotations

import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

RUNNER = Path(__file__).with_name("runner.py").read_text()
UNPRIVILEGED = 65534  # nobody / nogroup on Debian and most distributions
# loaded from cached bytecode before the program runs (later imports compile from source):
# what HumanEval and MBPP solutions import most, and what describing a failure needs
PRELOAD = ("typing", "re", "math", "collections", "itertools", "functools", "heapq", "bisect",
           "string", "hashlib", "operator", "copy", "traceback", "linecache")
STATUSES = ("passed", "failed", "error", "timeout", "killed", "exited", "conflict")
SYSTEM_READABLE = ("/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/dev/null", "/dev/urandom")


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the sandbox (not Linux, no Landlock, no sandlock, no usable Python)."""


class SandboxError(RuntimeError):
    """The sandbox failed before the program ran: a fault of the harness, never a verdict."""


@dataclass(frozen=True)
class Limits:
    """What one run may use. `memory` bounds each process's address space (RLIMIT_AS) and the
    sandbox's total (sandlock); `processes` counts live processes, the runner included."""

    timeout: float = 10.0        # wall-clock seconds, interpreter start-up included (~50 ms)
    memory: int = 1 << 30        # bytes
    processes: int = 16
    file_size: int = 16 << 20    # bytes per file (RLIMIT_FSIZE: SIGXFSZ past it)
    open_files: int = 64         # descriptors per process (RLIMIT_NOFILE)
    output: int = 1 << 20        # bytes of output kept per stream; the rest is read and dropped

    def __post_init__(self):
        for name in ("timeout", "memory", "processes", "file_size", "open_files", "output"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
        if self.memory < 64 << 20:
            raise ValueError(f"Limits.memory must be at least 64 MiB (Python itself needs ~30), got {self.memory}")
        if self.open_files < 16:
            raise ValueError(f"Limits.open_files must be at least 16, got {self.open_files}")


@dataclass(frozen=True)
class Outcome:
    """What a run came to. `status` is one of STATUSES; `error`, `where` and `traceback` describe
    a failure (`where` is "<solution>:LINE" or "<test>:LINE"); `output` is what the program printed."""

    status: str
    passed: bool
    seconds: float
    exit_code: int | None = None
    signal: int | None = None
    error: str = ""
    where: str = ""
    traceback: str = ""
    output: str = ""


def available() -> str | None:
    """None when programs can run here, else the reason they cannot."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (Landlock and seccomp); this is {sys.platform}"
    try:
        import sandlock
    except ImportError as e:
        return f"sandlock is not installed ({e}); pip install 'sandlock==0.9.0'"
    abi, need = sandlock.landlock_abi_version(), sandlock.min_landlock_abi()
    if abi < need:
        return f"the kernel's Landlock ABI is {abi}; sandlock needs {need} (Linux 6.12 or later)"
    try:
        interpreter()
    except SandboxUnavailable as e:
        return str(e)
    return None


def _reachable(path: str, uid: int, gid: int) -> bool:
    """Whether `uid`/`gid` (no supplementary groups) may traverse to `path` and read it."""
    def allowed(st, bits):  # bits: 4 read, 1 search/execute
        if st.st_uid == uid:
            return st.st_mode >> 6 & bits == bits
        if st.st_gid == gid:
            return st.st_mode >> 3 & bits == bits
        return st.st_mode & bits == bits

    real = Path(os.path.realpath(path))
    try:
        return all(allowed(p.stat(), 1) for p in real.parents) and allowed(real.stat(), 4 | (1 if real.is_dir() else 0))
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def interpreter(python: str | None = None) -> tuple[str, tuple[str, ...]]:
    """(executable, paths it must read) for the Python that runs programs.

    `python` if given, else this process's interpreter - unless we run as root and the
    unprivileged uid cannot reach it (a Python under /root), then the system's python3."""
    dropping = os.geteuid() == 0
    candidates = [python] if python else [sys.executable, shutil.which("python3") or "", "/usr/bin/python3"]
    tried = []
    for exe in filter(None, candidates):
        probe = "import sys, sysconfig, json; print(json.dumps([sys.version_info[:2], sys.base_prefix, " \
                "sys.prefix, sysconfig.get_paths()['stdlib'], sysconfig.get_paths()['platstdlib']]))"
        try:
            out = subprocess.run([exe, "-S", "-s", "-c", probe], capture_output=True, text=True, timeout=30, check=True)
            version, *dirs = json.loads(out.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            tried.append(f"{exe} ({type(e).__name__})")
            continue
        if tuple(version) < (3, 8):
            tried.append(f"{exe} (Python {version[0]}.{version[1]}; audit hooks need 3.8)")
            continue
        if dropping and not all(_reachable(p, UNPRIVILEGED, UNPRIVILEGED) for p in [exe, dirs[2], dirs[3]]):
            tried.append(f"{exe} (not readable by uid {UNPRIVILEGED})")
            continue
        paths = {os.path.realpath(exe), *dirs, *(p for p in SYSTEM_READABLE if os.path.exists(p))}
        return os.path.realpath(exe), tuple(sorted(paths))
    raise SandboxUnavailable("no Python the sandbox can run: tried " + ", ".join(tried)
                             + (f"; as root, programs run as uid {UNPRIVILEGED}, which needs a Python outside /root"
                                if dropping else ""))


def _remove(path: Path) -> None:
    """Remove a scratch folder whatever the program left in it: folders of mode 000, trees too
    deep for shutil.rmtree's recursion, symlinks out of it (never followed)."""
    try:
        shutil.rmtree(path)
        return
    except (OSError, RecursionError):
        pass
    stack = [str(path)]  # unlock every real folder, iteratively
    while stack:
        d = stack.pop()
        try:
            os.chmod(d, 0o700)  # scandir(is_dir(follow_symlinks=False)) said: a folder, no link
            with os.scandir(d) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            pass
    subprocess.run(["rm", "-rf", "--", str(path)], check=False, capture_output=True)


def execute(program: str, test: str = "", limits: Limits | None = None, guard: bool = True,
            python: str | None = None, scratch_root: str | os.PathLike | None = None) -> Outcome:
    """Run `program`, then `test` in its namespace, in a fresh sandbox; the verdict is "passed"
    when both finish without an exception.

    `guard=False` leaves out the runner's audit hook (frames, trace hooks, ctypes, ...): only
    for showing what the kernel-level sandbox contains on its own. `scratch_root`: where the
    run's scratch folder is made (default: the system's temporary directory)."""
    if not isinstance(program, str) or not isinstance(test, str):
        raise TypeError(f"program and test must be str, got {type(program).__name__} and {type(test).__name__}")
    limits = limits or Limits()
    why = available()
    if why:
        raise SandboxUnavailable(why)
    import sandlock

    exe, readable = interpreter(python)
    uid = gid = UNPRIVILEGED if os.geteuid() == 0 else None
    cpu = int(limits.timeout) + 1  # CPU seconds never exceed wall seconds: a backstop for the kill
    rlimits = {"RLIMIT_CPU": [cpu, cpu + 1], "RLIMIT_AS": int(limits.memory), "RLIMIT_FSIZE": int(limits.file_size),
               "RLIMIT_CORE": 0, "RLIMIT_NOFILE": int(limits.open_files)}
    if uid is not None:
        rlimits["RLIMIT_NPROC"] = 256  # per uid, all runs together: a backstop; sandlock counts per run
    p_token, f_token = secrets.token_hex(16).encode(), secrets.token_hex(16).encode()
    cfg = {"program": program, "test": test, "uid": uid, "gid": gid, "rlimits": rlimits,
           "preload": PRELOAD, "guard": guard}
    payload = p_token + b"\n" + f_token + b"\n" + json.dumps(cfg).encode()

    scratch = Path(tempfile.mkdtemp(prefix="sclab-sandbox-", dir=scratch_root))
    t0 = time.monotonic()
    try:
        if uid is not None:
            os.chown(scratch, uid, gid)
        box = sandlock.Sandbox(
            fs_readable=list(readable), fs_writable=[str(scratch)], cwd=str(scratch), clean_env=True,
            env={"HOME": str(scratch), "TMPDIR": str(scratch), "PYTHONHASHSEED": "0", "LANG": "C.UTF-8"},
            max_memory=int(limits.memory), max_processes=int(limits.processes), no_coredump=True,
            # no net_allow / net_allow_bind: every outbound connection and every bind is refused
        )
        piped = sandlock.StdioMode.PIPED
        try:
            proc = box.popen([exe, "-S", "-s", "-B", "-c", RUNNER], stdin=piped, stdout=piped, stderr=piped)
        except RuntimeError as e:
            raise SandboxError(f"sandlock could not start {exe}: {e}") from e
        with proc:
            out, err, timed_out = _communicate(proc, payload, limits, t0)
            result = proc.wait(timeout=5.0)  # the runner is gone; sandlock kills what it left
    finally:
        _remove(scratch)
    return _outcome(out, err, timed_out, result, p_token, f_token, limits, time.monotonic() - t0)


def _communicate(proc, payload: bytes, limits: Limits, t0: float) -> tuple[bytes, bytes, bool]:
    """Write the payload, read both streams (keeping `limits.output` bytes of each) until the
    runner exits or the deadline passes; on the deadline, kill the whole tree."""
    pid = proc.pid
    pidfd = os.pidfd_open(pid)
    streams = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    stdin = proc.stdin.fileno()
    for fd in (stdin, *streams):
        os.set_blocking(fd, False)
    sel = selectors.DefaultSelector()
    sel.register(pidfd, selectors.EVENT_READ)
    sel.register(stdin, selectors.EVENT_WRITE)
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    sent, exited, timed_out = 0, None, False
    deadline = t0 + limits.timeout
    try:
        while True:
            now = time.monotonic()
            if exited is None and now >= deadline:
                timed_out = True
                _kill(pid)
                exited = now
            # after the exit, what is left in the pipes is read for a moment; a leftover
            # descendant holding them open is killed by sandlock's wait()
            if exited is not None and (now - exited > 0.25 or not any(k.fd in streams for k in sel.get_map().values())):
                break
            wait = (deadline if exited is None else exited + 0.25) - now
            for key, _ in sel.select(max(0.0, wait)):
                if key.fd == pidfd:
                    sel.unregister(pidfd)
                    exited = time.monotonic()
                elif key.fd == stdin:
                    try:
                        sent += os.write(stdin, payload[sent:sent + (1 << 16)])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the runner is gone; its exit status tells why
                        sent = len(payload)
                    if sent >= len(payload):
                        sel.unregister(stdin)
                        proc.stdin.close()
                else:
                    try:
                        data = os.read(key.fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not data:
                        sel.unregister(key.fd)
                    else:
                        buf = streams[key.fd]
                        buf += data[:max(0, limits.output - len(buf))]
    finally:
        sel.close()
        os.close(pidfd)
    if exited is not None and not timed_out:
        try:  # a program that exits leaves no process of its group behind
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    out, err = streams.values()
    return bytes(out), bytes(err), timed_out


def _kill(pid: int) -> None:
    """SIGKILL the runner, its process group and its descendants at once: the path `sclab run`
    uses for a notebook's tree (sclab.runs.procs), without its SIGTERM grace."""
    import psutil

    from sclab.runs.procs import descendants, kill_tree

    try:
        known = {pid: psutil.Process(pid)}
    except psutil.Error:
        return
    known.update({p.pid: p for p in descendants(pid)})
    kill_tree(known, grace=0.0)


def _outcome(out: bytes, err: bytes, timed_out: bool, result, p_token: bytes, f_token: bytes,
             limits: Limits, seconds: float) -> Outcome:
    from sandlock import ExitReason

    lines = out.split(b"\n")
    has_p = b"sclab-verdict " + p_token in lines
    has_f = b"sclab-verdict " + f_token in lines
    detail: dict = {}
    if has_f:
        after = lines[lines.index(b"sclab-verdict " + f_token) + 1:]
        for line in after:
            if line.startswith(b"sclab-detail "):
                try:
                    detail = json.loads(line[len(b"sclab-detail "):])
                except ValueError:
                    pass
                break
    code = result.exit_code if result.reason == ExitReason.EXITED else None
    sig = result.signal if result.reason == ExitReason.SIGNALED and result.signal > 0 else None
    output = err.decode("utf-8", "replace")
    if not timed_out and result.reason != ExitReason.TIMEOUT and b"sclab-ready" not in lines:
        # the runner writes "sclab-ready" just before the program runs: a harness failure
        raise SandboxError(f"the sandbox failed before the program ran ({result.reason.name}, exit status "
                           f"{result.exit_code}): {output[-2000:]}")
    if timed_out or result.reason == ExitReason.TIMEOUT:
        status, error = "timeout", f"timed out after {limits.timeout:g} s"
    elif has_p and has_f:
        status, error = "conflict", "both verdicts on the channel"
    elif has_p and code == 0:
        status, error = "passed", ""
    elif has_f:
        status = "failed" if detail.get("type") == "AssertionError" else "error"
        error = detail.get("message") or detail.get("type") or "the test raised an exception"
    elif sig is not None:
        status, error = "killed", f"killed by {signal.Signals(sig).name}" if sig in signal.valid_signals() else f"signal {sig}"
    elif result.reason == ExitReason.KILLED:
        status, error = "killed", "killed by the sandbox (memory or process limit)"
    else:
        status, error = "exited", f"exited with status {code} before the test finished"
    return Outcome(status=status, passed=status == "passed", seconds=round(seconds, 4), exit_code=code,
                   signal=sig, error=error, where=detail.get("where", ""), traceback=detail.get("traceback", ""),
                   output=output)


def execute_many(jobs: Sequence[tuple[str, str]], limits: Limits | None = None, workers: int = 1,
                 **kwargs) -> list[Outcome]:
    """`execute` over (program, test) pairs, `workers` at a time, results in input order."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if workers == 1:
        return [execute(p, t, limits, **kwargs) for p, t in jobs]
    with ThreadPoolExecutor(workers) as pool:  # each run waits on its own process: threads suffice
        return list(pool.map(lambda job: execute(job[0], job[1], limits, **kwargs), jobs))
