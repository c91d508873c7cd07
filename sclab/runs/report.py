"""The results collector: `outputs/REPORT.md`, the lab's findings and every recorded run.

Reads each finished run directory `outputs/<stem>/<preset>/` (manifest.json, metrics.json,
figures/*.png) and writes a deterministic markdown page: first the findings table (one row per
paper claim a notebook tests, `sclab.runs.findings`, its number read from the metrics), then
the runs, then per notebook its figures and a compact metrics table. Every metric of every run
goes to `outputs/metrics.csv` beside it. Runs of a preset with another seed (`<preset>+seed<N>`,
`sclab run NOTEBOOK --seeds 1 2`) are not reported on their own: each finding of the preset's run
gets its mean ± sd over the preset's run and those seeds, and in how many of them it kept its
direction.

    >>> from sclab.runs.report import build_report
    >>> build_report("outputs").name  # doctest: +SKIP
    'REPORT.md'
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from .params import outputs_root as _outputs_root
from .record import atomic_write

SUFFIXES = (".partial", ".failed", ".old")  # run directories that are not finished runs
SEED_RUN = re.compile(r".+\+seed\d+")        # a preset's run with another seed (`execute.run_name`)


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


def _value(flat: dict, key: str) -> str:
    v = flat.get(key)
    if v is None:
        return "—"
    ci = f" [{fmt(flat[key + '_lo'])}, {fmt(flat[key + '_hi'])}]" if key + "_lo" in flat and key + "_hi" in flat else ""
    return fmt(v) + ci


def seed_runs(run: Path, runs: list[Path]) -> list[Path]:
    """The runs among `runs` that are `run`'s preset with another seed (`<preset>+seed<N>`), by seed:
    only those with the same code hash and the same parameters but the seed, and a seed other than
    `run`'s own (a stale or duplicate seed run would bias the spread; it stays in the Runs table)."""
    def params(r: Path) -> dict:
        return _load(r / "metrics.json").get("params", {})

    def code(r: Path):
        return _load(r / "manifest.json").get("code_hash")

    base = params(run)
    found = []
    for r in runs:
        if r.parent != run.parent or not re.fullmatch(re.escape(run.name) + r"\+seed(\d+)", r.name):
            continue
        p = params(r)
        if (code(r) == code(run) and p.get("seed") != base.get("seed")
                and {k: v for k, v in p.items() if k != "seed"} == {k: v for k, v in base.items() if k != "seed"}):
            found.append(r)
    return sorted(found, key=lambda r: int(r.name.rsplit("+seed", 1)[1]))


def spread(finding, metrics: list[dict]) -> str:
    """A finding over several seeds' metrics: mean ± sd (ddof 1) and how many kept its direction."""
    from .findings import status

    res = [status(finding, m) for m in metrics]
    vals = [v for _, v in res if v is not None and not math.isnan(v)]
    if len(metrics) < 2 or len(vals) < 2:
        return "—"
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    kept = sum(k is True for k, _ in res)
    return f"{fmt(mean)} ± {fmt(sd)} ({len(metrics)} seeds; ✓ {kept}/{len(metrics)})"


def _findings_rows(runs: list[Path], metrics: list[dict], seeds: list[list[dict]] | None = None) -> list[list[str]]:
    from .findings import from_metrics, status

    rows = []
    for i, (run, m) in enumerate(zip(runs, metrics)):
        flat = flatten(m)
        for f in from_metrics(m):
            kept, _ = status(f, m)
            mark = {True: "✓", False: "✗", None: "?"}[kept]
            rows.append([f"{f.paper} ([{f.arxiv}](https://arxiv.org/abs/{f.arxiv}))", f.claim, f.paper_value,
                         f"`{f.metric}` = {_value(flat, f.metric)}" + (f" (expected {f.expect})" if f.expect else ""),
                         mark, spread(f, [m] + (seeds[i] if seeds else [])), f.kind, f"{run.parent.name}/{run.name}"])
    return rows


def _compact(m: dict, limit: int = 24) -> list[list[str]]:
    """The metrics the findings cite, then the run's top-level numbers: at most `limit` rows."""
    from .findings import from_metrics

    flat = flatten(m)
    keys = list(dict.fromkeys(f.metric for f in from_metrics(m)))
    keys += [k for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
             and not k.endswith(("_lo", "_hi")) and k not in keys]
    return [[f"`{k}`", _value(flat, k)] for k in keys[:limit] if k in flat]


def metrics_csv(runs: list[Path], metrics: list[dict]) -> str:
    """Every scalar metric of every run: notebook, preset, metric, value, lo, hi."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["notebook", "preset", "metric", "value", "lo", "hi"])
    for run, m in zip(runs, metrics):
        flat = flatten(m)
        for key in sorted(flat):
            if key.endswith(("_lo", "_hi")) and key[:-3] in flat:
                continue
            w.writerow([run.parent.name, run.name, key, flat[key], flat.get(key + "_lo", ""), flat.get(key + "_hi", "")])
    return buf.getvalue()


def render(outputs: Path) -> str:
    """The text of REPORT.md for the runs under `outputs` (a pure function of the files)."""
    outputs = Path(outputs)
    runs = find_runs(outputs)
    lines = ["# sclab — findings", "",
             "Written by `sclab report` from the recorded runs beside this file (do not edit); every number is "
             "read from a run's metrics.json, and `make reproduce` re-runs and verifies them.", ""]
    if not runs:
        return "\n".join(lines + ["No recorded runs.", ""])

    all_runs = runs
    manifests = [_load(r / "manifest.json") for r in runs]
    runs = [r for r in all_runs if not SEED_RUN.fullmatch(r.name)]   # the seed runs only feed the spread
    labels = [f"{r.parent.name}/{r.name}" for r in runs]
    metrics = [_load(r / "metrics.json").get("metrics", {}) for r in runs]
    seeds = [[_load(s / "metrics.json").get("metrics", {}) for s in seed_runs(r, all_runs)] for r in runs]

    rows = _findings_rows(runs, metrics, seeds)
    lines += ["## Findings", ""]
    if rows:
        lines += _table(["paper", "claim", "paper's number", "this run [95% CI]", "direction", "over seeds",
                         "toy result", "run"], rows)
        lines += ["", "Direction: ✓ this run's metric points the way the paper's claim predicts, ✗ it does not, "
                  "? not measurable. Over seeds: the metric's mean ± sd over this run and its preset's runs with "
                  "other seeds (`sclab run NOTEBOOK --seeds 1 2`), and in how many it kept the direction; — where "
                  "no other seed was run. Toy result: *built-in* = a prior the toy world sets, replayed by the model; "
                  "*emergent* = what a method did that the world did not dictate."]
    else:
        lines.append("No run recorded findings yet.")

    lines += ["", "## Runs", ""]
    rows = []
    for run, m in zip(all_runs, manifests):
        sha = m.get("git_sha")
        sha = (sha[:10] + (" (dirty tree)" if m.get("git_dirty") else "")) if sha else "—"
        wall = m.get("wall_s")
        rows.append([run.parent.name, run.name, str(m.get("status", "—")),
                     f"{wall:.1f} s" if isinstance(wall, (int, float)) else "—",
                     sha, f"`{m.get('code_hash', '—')}`", f"`{m.get('toy_weights_sha256') or '—'}`",
                     str(m.get("cpu", "—"))])
    lines += _table(["notebook", "preset", "status", "wall time", "git sha", "code hash", "toy weights", "cpu"], rows)

    failed = find_failed(outputs)
    if failed:
        lines += ["", "## Failed runs", ""]
        for f in failed:
            m = _load(f / "manifest.json")
            lines.append(f"- `{f.parent.name}/{f.name}`: {m.get('status', 'unknown')} "
                         f"([notebook]({f.relative_to(outputs).as_posix()}/notebook.ipynb))")

    for label, run, m in zip(labels, runs, metrics):
        lines += ["", f"## {label}", "", f"[executed notebook]({run.relative_to(outputs).as_posix()}/notebook.ipynb); "
                  f"all {len(cells(m))} metrics in [metrics.csv](metrics.csv)."]
        compact = _compact(m)
        if compact:
            lines += [""] + _table(["metric", "value [95% CI]"], compact)
        figs = sorted((run / "figures").glob("*.png"))
        if figs:
            lines += [""] + [f"![{label} {f.stem}]({f.relative_to(outputs).as_posix()})" for f in figs]
    return "\n".join(lines) + "\n"


def build_report(outputs_root: str | os.PathLike | None = None) -> Path:
    """Write `<outputs>/REPORT.md` (default outputs: --outputs / SCLAB_OUTPUTS / <root>/outputs)."""
    outputs = _outputs_root(outputs_root)
    outputs.mkdir(parents=True, exist_ok=True)
    runs = find_runs(outputs)
    atomic_write(outputs / "metrics.csv", metrics_csv(runs, [_load(r / "metrics.json").get("metrics", {}) for r in runs]))
    return atomic_write(outputs / "REPORT.md", render(outputs))
