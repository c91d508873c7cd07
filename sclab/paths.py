"""Where sclab keeps what it builds and caches (one root, `SCLAB_CACHE_DIR` or ~/.cache/sclab),
and how it writes files there (atomically).

A module of its own so that any layer (the toy build, the generation cache, records, runs) can
use both without importing another layer.

    >>> from sclab.paths import cache_root
    >>> cache_root().name != ""
    True
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_root() -> Path:
    """SCLAB_CACHE_DIR, else ~/.cache/sclab."""
    return Path(os.environ.get("SCLAB_CACHE_DIR") or Path.home() / ".cache" / "sclab")


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write `data` to `path` through a temp file in the same folder and os.replace: a reader
    never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
