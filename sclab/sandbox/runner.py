"""The program the sandbox starts: it runs model code and its tests and reports a verdict.

It is not imported by sclab: `sclab.sandbox.execute` passes this file's text to the sandbox's
interpreter (`python -c`), so it uses the standard library only and holds no state in module
globals (`import __main__` would reach them). What it does, in order, before any model code
exists in the process:

1. reads everything the parent sends on stdin: two verdict tokens (P for "passed", F for
   "failed"), then JSON with the program, the test and the limits; stdin is then /dev/null;
2. sets rlimits (soft = hard), then, when started as root, drops to the unprivileged uid, and
   arms the parent-death signal (a uid change clears sandlock's; os.fork children re-arm it);
3. moves stdout to a private descriptor (the verdict channel) and points fd 1 at stderr, so
   the program's prints reach the parent as its output, never as a verdict;
4. preloads the modules most solutions import from their cached bytecode, then turns cached
   bytecode off (marshal can build code objects that read memory), and installs the guard.

Then it executes the program and the test in one namespace (each compiled on its own, so a
program cannot swallow the test, e.g. with an unclosed string). When both finish, it zeroes F
and writes P; on any exception it zeroes P, writes F, and only then lifts the frame guard to
describe the failure. The tokens are bytearrays that never become `str` or `bytes` objects
until the one write, so a program that reads a verdict (by redirecting the channel) reads F,
which cannot be turned into P.

The guard (sys.addaudithook, which Python code cannot remove) stops what would let the program
read the tokens or rewrite the runner: frames (sys._getframe, tb/gi/cr/ag_frame, current
frames), trace and profile hooks, gc's object walks, new code objects (code.__new__, __code__
assignment, marshal), further audit hooks, and native-code modules (ctypes, _testcapi, ...).
`sys._getframe` raises ValueError, which namedtuple, typing and enum already catch.
"""

TOKEN_LEN = 32  # hex characters per verdict token (16 random bytes)
BLOCKED_MODULES = ("_ctypes", "ctypes", "_testcapi", "_testinternalcapi", "_testbuffer",
                   "_testmultiphase", "_testimportmultiple", "_xxsubinterpreters",
                   "_xxinterpchannels", "_xxtestfuzz", "_ctypes_test")
FRAME_ATTRS = ("tb_frame", "gi_frame", "cr_frame", "ag_frame")
BLOCKED_EVENTS = ("sys._current_frames", "sys._current_exceptions", "sys.settrace",
                  "sys.setprofile", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
                  "code.__new__", "marshal.loads", "marshal.load", "sys.addaudithook")
FRAME_EVENTS = ("sys._getframe", "sys._current_frames", "sys._current_exceptions",
                "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers",
                "gc.get_referents")


def install_guard(lifted):
    """Audit hook; `lifted[0] = True` re-allows frame access (after the verdict is written).

    Everything the hook uses is bound here, as defaults and locals: a program can rebind
    names in `__main__` and `builtins`, never a closure's."""
    import sys

    def hook(event, args, blocked_modules=BLOCKED_MODULES, frame_attrs=FRAME_ATTRS,
             blocked_events=BLOCKED_EVENTS, frame_events=FRAME_EVENTS, any=any, len=len, str=str,
             ImportError=ImportError, RuntimeError=RuntimeError, ValueError=ValueError):
        if event == "import":
            name = str(args[0]) if args else ""
            path = str(args[1]) if len(args) > 1 and args[1] else ""
            base = path.rsplit("/", 1)[-1]
            if any(part in blocked_modules for part in name.split(".")) or \
                    any(base.startswith(m + ".") for m in blocked_modules):
                raise ImportError(f"sclab sandbox: module {name!r} is not available")
        elif event.startswith("ctypes."):
            raise RuntimeError(f"sclab sandbox: {event} is not allowed")
        elif lifted[0] and event in frame_events:
            return
        elif event == "sys._getframe":
            raise ValueError("sclab sandbox: frame access is disabled")
        elif event in blocked_events:
            raise RuntimeError(f"sclab sandbox: {event} is not allowed")
        elif event == "object.__getattr__" and len(args) > 1 and args[1] in frame_attrs:
            if not lifted[0]:
                raise RuntimeError(f"sclab sandbox: {args[1]} is not allowed")
        elif event == "object.__setattr__" and len(args) > 1 and args[1] == "__code__":
            raise RuntimeError("sclab sandbox: assigning __code__ is not allowed")

    sys.addaudithook(hook)


def describe(exc, sources):
    """The failure as the parent reports it: exception type and message, the traceback entries
    in the program and the test (with their source lines), the innermost of them."""
    import traceback

    try:
        message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    except BaseException:  # a hostile __str__
        message = type(exc).__name__
    entries = []
    try:
        for fs in traceback.extract_tb(exc.__traceback__, limit=50):
            if fs.filename in sources:
                lines = sources[fs.filename].splitlines()
                text = lines[fs.lineno - 1].strip() if fs.lineno and 0 < fs.lineno <= len(lines) else ""
                entries.append((fs.filename, fs.lineno, fs.name, text))
    except BaseException:
        pass
    tb = "".join(f'  File "{f}", line {n}, in {name}\n' + (f"    {t}\n" if t else "") for f, n, name, t in entries)
    where = f"{entries[-1][0]}:{entries[-1][1]}" if entries else ""
    if isinstance(exc, SyntaxError) and exc.filename in sources:  # raised by compile(): no entry
        where = f"{exc.filename}:{exc.lineno}"
    return {"type": type(exc).__name__, "message": message[:2000], "where": where,
            "traceback": ("Traceback (most recent call last):\n" + tb + message)[-4000:]}


def main():
    import builtins
    import json
    import os
    import resource
    import sys

    # what runs after the program is bound now: it can rebind names in builtins and __main__
    write, exit_, exec_, compile_, dict_ = os.write, os._exit, builtins.exec, builtins.compile, dict
    range_, n_token, catch = range, TOKEN_LEN, BaseException

    def flush(sys):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except catch:
                pass

    # 1. the tokens, read into a bytearray (no bytes copy), then the rest of the input
    head = bytearray(2 * TOKEN_LEN + 2)
    view, got = memoryview(head), 0
    while got < len(head):
        n = os.readv(0, [view[got:]])
        if n == 0:
            exit_(3)
        got += n
    view.release()
    passed, failed = head[:TOKEN_LEN], head[TOKEN_LEN + 1:2 * TOKEN_LEN + 1]
    for i in range(len(head)):
        head[i] = 0
    chunks = []
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    cfg = json.loads(b"".join(chunks))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    # 2. rlimits (hard = soft: an unprivileged process cannot raise them again), then the uid
    for name, value in cfg["rlimits"].items():
        soft, hard = value if isinstance(value, list) else (value, value)
        resource.setrlimit(getattr(resource, name), (soft, hard))
    parent = os.getppid()
    if cfg.get("uid") is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])  # as root: real, effective and saved uid
        if 0 in (os.getuid(), os.geteuid(), os.getgid(), os.getegid()):
            exit_(4)
    try:  # die with the harness: sandlock armed the runner, but a uid change clears it, and
        import ctypes  # fork()ed children never had it

        prctl = ctypes.CDLL(None, use_errno=True).prctl
        PR_SET_PDEATHSIG, SIGKILL = 1, 9  # <linux/prctl.h>
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
        os.register_at_fork(after_in_child=lambda: prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
        del ctypes
        for mod in [m for m in sys.modules if m == "_ctypes" or m.split(".")[0] == "ctypes"]:
            del sys.modules[mod]  # a later import goes through the guard's import check
    except (ImportError, OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the harness died before the signal was armed
        exit_(5)

    # 3. the verdict channel
    channel = os.dup(1)  # not inheritable (PEP 446)
    os.dup2(2, 1)

    # 4. preloads, no cached bytecode from now on, the guard
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]  # `-c` put the scratch folder first
    for name in cfg.get("preload", ()):
        try:
            __import__(name)
        except ImportError:
            pass
    sys.pycache_prefix = "/nonexistent/sclab-no-pycache"  # unreadable: imports compile from source
    sys.dont_write_bytecode = True
    lifted = [False]
    if cfg.get("guard", True):
        install_guard(lifted)

    pristine = dict_(builtins.__dict__)  # the test gets builtins as they were before the program
    sources = {"<solution>": cfg["program"], "<test>": cfg.get("test", "")}
    ns = {"__name__": "__solution__", "__builtins__": dict_(pristine)}
    write(channel, b"sclab-ready\n")  # the harness's part went well; from here on, the program's
    try:
        exec_(compile_(sources["<solution>"], "<solution>", "exec"), ns)
        if sources["<test>"]:
            ns["__builtins__"] = dict_(pristine)
            exec_(compile_(sources["<test>"], "<test>", "exec"), ns)
    except catch as exc:
        for i in range_(n_token):
            passed[i] = 0
        write(channel, b"sclab-verdict " + failed + b"\n")
        flush(sys)
        lifted[0] = True  # the verdict is out: frames may now be read, to describe the failure
        try:
            detail = json.dumps(describe(exc, sources))
            write(channel, b"sclab-detail " + detail.encode("utf-8", "replace") + b"\n")
        except catch:
            pass
        exit_(0)
    flush(sys)  # print() buffers; may run the program's own stream objects, still guarded
    for i in range_(n_token):
        failed[i] = 0
    write(channel, b"sclab-verdict " + passed + b"\n")
    exit_(0)

if __name__ == "__main__":
    main()
