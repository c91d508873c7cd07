"""Where benchmark files live and how they are read: SCLAB_DATA_DIR, JSONL, the hub fallback.

The data are never copied into the repo: code reads them from a data directory, which is
SCLAB_DATA_DIR when set (CI sets `../shared/data`), else a `shared/data` next to the repo.
When a file is missing locally, tasks may fall back to the Hugging Face hub copy.

    >>> from sclab.tasks.files import data_dir, read_jsonl
    >>> len(read_jsonl(data_dir() / "math500" / "test.jsonl"))  # doctest: +SKIP
    500
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

ENV_VAR = "SCLAB_DATA_DIR"
# the folder that contains the `sclab` package: sclab/tasks/files.py -> parents[2]
REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The benchmark data directory.

    SCLAB_DATA_DIR if set (a relative value is tried against the current directory, then the
    repo root, since CI documents it relative to the repo); otherwise `shared/data` or
    `../shared/data` beside the repo root. Raises ValueError for an SCLAB_DATA_DIR that does
    not exist, FileNotFoundError when nothing is found."""
    value = os.environ.get(ENV_VAR)
    if value:
        path = Path(value).expanduser()
        candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate.resolve()
        tried = " or ".join(str(c) for c in candidates)
        raise ValueError(f"{ENV_VAR}={value!r} is not an existing directory (looked for {tried})")
    candidates = [REPO_ROOT / "shared" / "data", REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no benchmark data directory found (tried {tried}); "
                            f"set {ENV_VAR} to the folder holding gsm8k/, math500/, ...")


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a JSONL file (gzip-compressed when the name ends in .gz); blank lines skipped."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
    return rows


def load_from_hub(name: str, config: str | None, split: str) -> list[dict[str, Any]]:
    """A split of a Hugging Face hub dataset as a list of dicts (needs `datasets` and, unless cached, a network)."""
    from datasets import load_dataset  # lazy: a heavy import, and only an offline fallback

    return [dict(row) for row in load_dataset(name, config, split=split)]


def load_rows(relative: str, hub_name: str, hub_config: str | None, split: str,
              path: str | os.PathLike | None = None) -> tuple[list[dict[str, Any]], str]:
    """The rows of one benchmark split and where they came from.

    `path` (an explicit file) if given; else data_dir()/`relative`; else the hub copy
    `hub_name`. Raises FileNotFoundError naming what was tried when all fail. A set but
    missing SCLAB_DATA_DIR is an error (ValueError), never a silent switch to the network."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        return read_jsonl(path), str(path)
    try:
        local = data_dir() / relative
        why_local = f"{local} does not exist"
    except FileNotFoundError as e:
        local, why_local = None, str(e)
    if local is not None and local.is_file():
        return read_jsonl(local), str(local)
    try:
        return load_from_hub(hub_name, hub_config, split), f"hub:{hub_name}"
    except Exception as e:  # ImportError (no `datasets`), no network, unknown split, ...
        why_hub = f"{type(e).__name__}: {e}"
    raise FileNotFoundError(f"cannot load {relative}: {why_local}, and the hub copy {hub_name!r} failed "
                            f"({why_hub}); set {ENV_VAR} to the folder holding {relative}")
