"""Recording a notebook's results: metrics, the records table and figures, into its run directory.

Under `sclab run` the environment variable SCLAB_RUN_DIR names the run directory and every
call writes there atomically (a temp file in the same folder, then os.replace). In an
interactive session there is no run directory: values stay in memory (`recorded()`) and a
one-time note says that nothing is written. Our own ~100 lines instead of scrapbook
(unmaintained since 2021).

    >>> from sclab.runs.record import record, recorded
    >>> record("acc@1", 0.5); recorded()["acc@1"]
    sclab: not under `sclab run` (no SCLAB_RUN_DIR): results stay in memory, nothing is written
    0.5
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sclab.paths import atomic_write  # noqa: F401  (runs write through it; re-exported)

_MEMORY: dict[str, Any] = {}
_NOTED = False


def run_dir() -> Path | None:
    """The current run directory (SCLAB_RUN_DIR, set by `sclab run`), or None interactively."""
    env = os.environ.get("SCLAB_RUN_DIR")
    return Path(env) if env else None


def _note_interactive() -> None:
    global _NOTED
    if not _NOTED:
        _NOTED = True
        print("sclab: not under `sclab run` (no SCLAB_RUN_DIR): results stay in memory, nothing is written")


def to_jsonable(value: Any) -> Any:
    """Numpy/torch scalars and arrays, tuples and Paths as plain JSON values (recursively)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    raise TypeError(f"cannot record a {type(value).__name__}: {value!r} is not JSON-serialisable")


def read_metrics(directory: Path) -> dict[str, Any]:
    """`metrics.json` of a run directory as {"params", "manifest", "metrics"} (empty parts if absent)."""
    path = Path(directory) / "metrics.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return {"params": data.get("params", {}), "manifest": data.get("manifest", {}),
            "metrics": data.get("metrics", {})}


def write_metrics(directory: Path, data: dict[str, Any]) -> Path:
    """Write `metrics.json` atomically (NaN kept as JSON's NaN extension, keys in given order)."""
    return atomic_write(Path(directory) / "metrics.json", json.dumps(to_jsonable(data), indent=2) + "\n")


def record(name: str, value: Any) -> None:
    """Record one result (a number, string, list or dict of them) under `name`.

    Merged into `metrics.json` = {"params", "manifest", "metrics": {name: value, ...}}.
    """
    clean = to_jsonable(value)
    json.dumps(clean)  # fail here, in the cell that recorded it, not at the end of the run
    _MEMORY[name] = clean
    directory = run_dir()
    if directory is None:
        _note_interactive()
        return
    data = read_metrics(directory)
    if not data["params"] and (directory / "params.yaml").exists():
        data["params"] = yaml.safe_load((directory / "params.yaml").read_text()) or {}
    data["metrics"][name] = clean
    write_metrics(directory, data)


def recorded() -> dict[str, Any]:
    """What this process recorded so far (a copy)."""
    return json.loads(json.dumps(_MEMORY))


def save_records(table: Any) -> Path | None:
    """Write the tidy records table (a DataFrame or a list of dicts) to `records.jsonl`
    (`sclab.records.write_jsonl`; `sclab.records.read_jsonl` reads it back)."""
    from sclab.records import write_jsonl  # pandas: imported when a notebook saves its records

    directory = run_dir()
    if directory is None:
        _note_interactive()
        return None
    return write_jsonl(table, directory / "records.jsonl")


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^\w.-]+", "_", name.removesuffix(".png")).strip("._")
    if not stem:
        raise ValueError(f"figure name {name!r} has no usable characters")
    return stem


def save_figure(fig: Any, name: str) -> Path | None:
    """Save a matplotlib figure to `figures/<name>.png` (dpi 120); returns the path (None interactively)."""
    directory = run_dir()
    if directory is None:
        _note_interactive()
        return None
    path = directory / "figures" / f"{_safe_name(name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o644)
    os.close(fd)
    try:
        # no "Software" metadata: the PNG bytes then do not change with the matplotlib version
        fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight", metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
