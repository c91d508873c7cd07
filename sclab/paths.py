"""Where sclab keeps what it builds and caches: one root, `SCLAB_CACHE_DIR` or ~/.cache/sclab.

A module of its own so that any layer (the toy build, the generation cache) can find the root
without importing another layer.

    >>> from sclab.paths import cache_root
    >>> cache_root().name != ""
    True
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """SCLAB_CACHE_DIR, else ~/.cache/sclab."""
    return Path(os.environ.get("SCLAB_CACHE_DIR") or Path.home() / ".cache" / "sclab")
