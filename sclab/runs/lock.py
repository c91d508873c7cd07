"""One run per output directory: an exclusive flock on `outputs/<stem>/<preset>.lock`.

The kernel drops an flock when the last descriptor of its open file is closed, which a dying
process does whatever killed it: a run killed with SIGKILL leaves no stale lock. The papermill
launcher inherits the descriptor, so the directory stays locked until every process of the run
is gone (a runner killed with SIGKILL still has a notebook shutting down). The holder writes
its pid, command and start time into the file for the message that refuses a second run.

    >>> from sclab.runs.lock import run_lock
    >>> with run_lock(Path("outputs/00_quickstart/quick")):  # doctest: +SKIP
    ...     pass  # a second `sclab run 00_quickstart --preset quick` is refused meanwhile
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path

import psutil

from .params import ParamError, project_root

_HELD: dict[str, int] = {}  # lock file -> descriptor, for the locks this process holds


class RunLocked(ParamError):
    """Another run is writing this output directory (refused before anything is written)."""


def lock_path(final: Path) -> Path:
    """`outputs/<stem>/<preset>.lock`, next to the run directory (which runs replace whole)."""
    return final.with_name(final.name + ".lock")


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(project_root()))
    except (ValueError, ParamError):
        return str(path)


def _holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}  # the holder has not written its note yet


def _refusal(final: Path, path: Path, holder: dict) -> str:
    pid = holder.get("pid")
    if pid is None:
        who = "another run (it has not written its pid yet)"
    else:
        who = f"pid {pid} (`{holder.get('command', '?')}`, started {holder.get('started', '?')}"
        who += f" on {holder['host']})" if holder.get("host") else ")"
        if not psutil.pid_exists(pid):
            who += "; that process has exited and its notebook is being stopped"
    stop = f" or stop it (kill {pid})" if pid is not None else ""
    return (f"{_show(final)} is being written by {who}: one run per output directory; "
            f"wait for it{stop}, or use another --preset or --outputs (lock: {_show(path)})")


@contextlib.contextmanager
def run_lock(final: Path):
    """Hold the lock of run directory `final`; yields its descriptor (for the launcher to inherit).
    Re-entrant within a process: a batch locks all its notebooks first, then runs each."""
    path = lock_path(Path(final))
    key = str(path.resolve())
    if key in _HELD:
        yield _HELD[key]
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: the holder's note stays readable
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunLocked(_refusal(Path(final), path, holder)) from None
    try:
        note = {"pid": os.getpid(), "command": " ".join(psutil.Process().cmdline()),
                "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)
        _HELD[key] = fd
        yield fd
    finally:
        _HELD.pop(key, None)
        os.close(fd)  # the lock goes with the last descriptor (a launcher may still hold one)


__all__ = ["RunLocked", "run_lock", "lock_path"]
