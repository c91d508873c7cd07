"""A run's processes: killing a whole tree, and stopping cleanly on SIGINT, SIGTERM and SIGHUP.

`sclab run` starts papermill (via `sclab.runs.launch`) in a session of its own, and papermill
starts the kernel in another one, so no signal sent to the runner reaches them. The runner
therefore turns SIGINT, SIGTERM and SIGHUP into `Stopped` (a KeyboardInterrupt) while it waits
for the notebook, kills the tree and records the run as interrupted. SIGKILL cannot be caught:
`sclab.runs.launch` watches for the runner's death from inside papermill's process instead.

    >>> with stop_on_signals():  # doctest: +SKIP
    ...     run_the_notebook()   # SIGTERM here raises Stopped(15); clean up in `except`/`finally`
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

import psutil

KILL_GRACE_S = 3.0  # SIGTERM, then this long, then SIGKILL
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal was closed


# ---------------------------------------------------------------------------------------------
# Process trees


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def alive(p: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie waits for init to reap it, harmlessly)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(procs, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_tree(known: dict[int, psutil.Process], proc: subprocess.Popen | None = None,
              grace: float = KILL_GRACE_S) -> None:
    """Kill `proc` (papermill), the processes in `known`, their descendants and process groups:
    SIGTERM, `grace` seconds, then SIGKILL (`grace=0`: at once; sclab.sandbox on a timeout).

    jupyter_client 8.10 (jupyter_client/launcher.py, `launch_kernel`) starts the kernel with
    `start_new_session=True` on POSIX: the kernel is in its OWN session and process group,
    so os.killpg on papermill's group does not reach it. Only ipykernel's ParentPollerUnix
    (it polls getppid() every 1 s because jupyter_client sets JPY_PARENT_PID) makes the
    orphaned kernel exit about a second later; anything the kernel started in a session of
    its own (vLLM engines, a notebook's subprocess) lives on. Measured here with killpg
    alone: the kernel survived the kill and exited ~1 s later; a `sleep 300` the notebook
    had started with start_new_session=True kept running. So we signal papermill's group,
    the group of every descendant noted while it ran, and every descendant by pid (psutil
    checks that a pid was not reused before signalling).
    """
    procs = {pid: p for pid, p in known.items() if alive(p)}  # is_running: the pid was not reused
    roots = list(procs) + ([proc.pid] if proc is not None and proc.poll() is None else [])
    for pid in roots:  # what they started since they were noted
        for p in descendants(pid):
            procs.setdefault(p.pid, p)
    # start_new_session: papermill's pgid is its pid (only while it is not reaped yet)
    groups = {proc.pid} if proc is not None and proc.poll() is None else set()
    for p in procs.values():
        try:
            groups.add(os.getpgid(p.pid))
        except OSError:
            pass
    groups.discard(os.getpgrp())  # never our own group: that would kill the caller

    def signal_all(sig: int) -> None:
        for g in groups:
            try:
                os.killpg(g, sig)
            except OSError:
                pass
        for p in procs.values():
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass

    if grace > 0:
        signal_all(signal.SIGTERM)
        if proc is not None:
            try:
                proc.wait(timeout=grace)  # papermill: ours to reap (not via psutil, keeps its rc)
            except subprocess.TimeoutExpired:
                pass
        wait_gone(procs.values(), grace)
    signal_all(signal.SIGKILL)
    if proc is not None:
        proc.wait()
    wait_gone(procs.values(), KILL_GRACE_S)


def set_subreaper() -> bool:
    """Linux: orphaned descendants are re-parented to this process instead of init, so a walk
    of our children finds a kernel's subprocess even after its own parent died."""
    if not sys.platform.startswith("linux"):
        return False
    PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# ---------------------------------------------------------------------------------------------
# Stopping on a signal


class Stopped(KeyboardInterrupt):
    """The runner got SIGINT, SIGTERM or SIGHUP. A KeyboardInterrupt, so that `except
    Exception` does not swallow it and Ctrl-C handlers treat all three alike."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_dir = None  # where the interrupted run was kept (set by run_notebook)


class _Stop:
    signum: int | None = None  # the first stop signal received
    raised = False             # Stopped was raised once: later signals must not abort the clean-up
    held = 0                   # > 0 inside hold_signals(): the signal waits for raise_if_stopped()
    installed = 0              # nesting depth of stop_on_signals()


def _handler(signum, frame) -> None:
    if _Stop.signum is None:
        _Stop.signum = signum
    if not _Stop.held:
        raise_if_stopped()


def raise_if_stopped() -> None:
    """Raise Stopped if a stop signal came and Stopped was not raised for it yet."""
    if _Stop.signum is not None and not _Stop.raised:
        _Stop.raised = True
        raise Stopped(_Stop.signum)


def stop_signal() -> str | None:
    """The name of the stop signal received (SIGTERM, ...), or None."""
    return signal.Signals(_Stop.signum).name if _Stop.signum is not None else None


@contextlib.contextmanager
def hold_signals():
    """A stop signal inside this block waits until the caller's next `raise_if_stopped()`
    (bookkeeping that must not be cut in half: starting the child, swapping a run in)."""
    _Stop.held += 1
    try:
        yield
    finally:
        _Stop.held -= 1


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT, SIGTERM and SIGHUP raise Stopped (once) while inside; handlers are restored after.
    Outside the main thread signals cannot be handled: there it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _Stop.installed == 0:
        previous = {s: signal.signal(s, _handler) for s in STOP_SIGNALS}
        _Stop.signum, _Stop.raised = None, False
    _Stop.installed += 1
    try:
        yield
    finally:
        _Stop.installed -= 1
        if _Stop.installed == 0:
            for s, h in previous.items():
                signal.signal(s, h)
            _Stop.signum, _Stop.raised = None, False


__all__ = ["kill_tree", "descendants", "alive", "wait_gone", "set_subreaper", "Stopped",
           "stop_on_signals", "hold_signals", "raise_if_stopped", "stop_signal", "KILL_GRACE_S"]
