"""The results collector: `outputs/REPORT.md`, one table of every metric of every recorded run.

Reads each finished run directory `outputs/<stem>/<preset>/` (manifest.json, metrics.json,
figures/*.png) and writes a deterministic markdown page: the runs, the scalar metrics
(nested dicts flattened with dots, `x_lo`/`x_hi` shown as `x [lo, hi]`), then the figures.

    >>> from sclab.runs.report import build_report
    >>> build_report("outputs").name  # doctest: +SKIP
    'REPORT.md'
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .params import outputs_root as _outputs_root
from .record import atomic_write

SUFFIXES = (".partial", ".failed", ".old")  # run directories that are not finished runs


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def find_runs(outputs: Path) -> list[Path]:
    """Finished run directories `<stem>/<preset>/` (with a manifest.json), sorted."""
    return sorted(p.parent for p in Path(outputs).glob("*/*/manifest.json")
                  if not p.parent.name.endswith(SUFFIXES))


def find_failed(outputs: Path) -> list[Path]:
    return sorted(p for p in Path(outputs).glob("*/*.failed") if p.is_dir())


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Scalars of a nested dict with dotted keys; lists and other containers are left out."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (bool, int, float, str)) or v is None:
            out[key] = v
    return out


def fmt(v: Any) -> str:
    """A table cell: floats to 3 decimals, bools lower-case, None as an em dash."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.3f}" if math.isfinite(v) else str(v)
    return str(v).replace("|", "\\|").replace("\n", " ")


def cells(metrics: dict) -> dict[str, str]:
    """One run's metric cells: `x` with `x_lo`/`x_hi` folded into `x [lo, hi]`."""
    flat = flatten(metrics)
    has_ci = {k for k in flat if k + "_lo" in flat and k + "_hi" in flat}
    out = {}
    for key, v in flat.items():
        if key.endswith(("_lo", "_hi")) and key[:-3] in has_ci:
            continue  # shown next to its base key
        out[key] = fmt(v) + (f" [{fmt(flat[key + '_lo'])}, {fmt(flat[key + '_hi'])}]" if key in has_ci else "")
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render(outputs: Path) -> str:
    """The text of REPORT.md for the runs under `outputs` (a pure function of the files)."""
    outputs = Path(outputs)
    runs = find_runs(outputs)
    lines = ["# sclab — recorded results", "",
             "Written by `sclab report` from the run directories next to this file; do not edit.",
             "Each run: `<notebook>/<preset>/` with the executed notebook, params.yaml, manifest.json,",
             "metrics.json, records.jsonl and figures.", ""]
    if not runs:
        return "\n".join(lines + ["No recorded runs.", ""])

    labels = [f"{r.parent.name}/{r.name}" for r in runs]
    manifests = [_load(r / "manifest.json") for r in runs]
    metrics = [_load(r / "metrics.json").get("metrics", {}) for r in runs]

    lines += ["## Runs", ""]
    rows = []
    for run, m in zip(runs, manifests):
        sha = m.get("git_sha")
        sha = (sha[:10] + ("-dirty" if m.get("git_dirty") else "")) if sha else "—"
        wall = m.get("wall_s")
        rows.append([run.parent.name, run.name, str(m.get("status", "—")),
                     f"{wall:.1f} s" if isinstance(wall, (int, float)) else "—",
                     f"`{m.get('params_hash', '—')}`", sha])
    lines += _table(["notebook", "preset", "status", "wall time", "params hash", "git sha"], rows)

    per_run = [cells(m) for m in metrics]
    names = sorted({k for c in per_run for k in c})
    lines += ["", "## Metrics", ""]
    if names:
        lines += _table(["metric", *labels], [[n, *(c.get(n, "") for c in per_run)] for n in names])
    else:
        lines.append("No metrics recorded.")

    failed = find_failed(outputs)
    if failed:
        lines += ["", "## Failed runs", ""]
        for f in failed:
            m = _load(f / "manifest.json")
            lines.append(f"- `{f.parent.name}/{f.name}`: {m.get('status', 'unknown')} "
                         f"([notebook]({f.relative_to(outputs).as_posix()}/notebook.ipynb))")

    figures = [(label, sorted((run / "figures").glob("*.png"))) for label, run in zip(labels, runs)]
    if any(figs for _, figs in figures):
        lines += ["", "## Figures"]
        for label, figs in figures:
            if figs:
                lines += ["", f"### {label}", ""]
                lines += [f"![{label} {f.stem}]({f.relative_to(outputs).as_posix()})" for f in figs]
    return "\n".join(lines) + "\n"


def build_report(outputs_root: str | os.PathLike | None = None) -> Path:
    """Write `<outputs>/REPORT.md` (default outputs: --outputs / SCLAB_OUTPUTS / <root>/outputs)."""
    outputs = _outputs_root(outputs_root)
    outputs.mkdir(parents=True, exist_ok=True)
    return atomic_write(outputs / "REPORT.md", render(outputs))
