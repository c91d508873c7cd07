"""Is a recorded run still the code's result? Code hashes for the skip check, and verification of
a re-run against the committed one.

A run is "finished" only if its parameters **and** its code match (`code_hash`: the package
source, the shipped toy weights, the notebook and its params files). `compare_metrics` then
says, metric by metric, whether a re-run reproduced a recorded run:

- **exact**: the same value (floats within 1e-9; lists and strings equal);
- **within tolerance**: a number whose difference is at most its tolerance — the recorded 95%
  CI's half-width where the metric has one (`x_lo`/`x_hi` beside `x`), else 0.02 for a value
  in [0, 1] (a rate) and 5% of its size otherwise. What depends only on the shipped weights
  and the seeds reproduces exactly on machines of one kind; what a notebook trains (SFT, DPO,
  RL) moves with the host's float reductions, hence the statistical tolerance;
- **differs**: anything else; timings (wall times, tokens per second, ...) are left out.

Findings (`sclab.runs.findings`) are checked separately: each must keep its direction.

    >>> compare_metrics({"acc": 0.5, "acc_lo": 0.4, "acc_hi": 0.6, "wall_s": 3.0},
    ...                 {"acc": 0.55, "acc_lo": 0.45, "acc_hi": 0.65, "wall_s": 9.0}).counts()
    {'exact': 0, 'within': 3, 'differs': 0, 'missing': 0}
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .params import project_root

# keys that measure the machine, not the method: never compared
TIMING = re.compile(r"(^|[._])(wall|time|times|seconds|secs|elapsed|duration|tokens_per_s|per_s|speed|"
                    r"[a-z0-9]*_s|[a-z0-9]*_sec|[a-z0-9]*_min|minutes)($|[._])")


def _files(root: Path, stem: str) -> list[Path]:
    pkg = root / "sclab"
    files = [p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and not p.name.endswith((".pyc", ".lock")) and not p.name.startswith("world_card-")]
    files += [root / "notebooks" / f"{stem}.ipynb"]
    files += sorted((root / "params" / stem).glob("*.yaml"))
    return sorted(p for p in files if p.is_file())


def _content(path: Path) -> bytes:
    """What of a file results depend on: a notebook's code cells (its prose and exercises cannot
    change a result), any other file whole."""
    data = path.read_bytes()
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(data)["cells"]
        except (ValueError, KeyError, TypeError):
            return data
        code = ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]
        return json.dumps(code).encode()
    return data


def code_hash(stem: str, root: Path | None = None) -> str:
    """A 12-hex hash of everything a notebook's results depend on besides its parameters: every
    file of the `sclab` package (source and shipped toy weights), the notebook's code cells and
    its params files. Touching any of them makes `sclab run --all` / `make reproduce` run it again."""
    root = Path(root) if root is not None else project_root()
    h = hashlib.sha256()
    for path in _files(root, stem):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(_content(path)).digest())
    return h.hexdigest()[:12]


def cpu_model() -> str:
    """The host CPU's model name (float reductions, hence trained weights, depend on it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Scalars and lists of scalars of a nested dict, with dotted keys."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b or abs(a - b) <= 1e-9
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def tolerance(key: str, flat: dict[str, Any]) -> float | None:
    """The stated tolerance of metric `key` in a recorded run (None: not a number)."""
    v = flat.get(key)
    if not _is_number(v) or not math.isfinite(v):
        return None
    base = key[:-3] if key.endswith(("_lo", "_hi")) else key
    lo, hi = flat.get(base + "_lo"), flat.get(base + "_hi")
    if _is_number(lo) and _is_number(hi) and math.isfinite(lo) and math.isfinite(hi):
        return max((hi - lo) / 2, 1e-9)
    return 0.02 if 0.0 <= v <= 1.0 else 0.05 * abs(v)


@dataclass
class Comparison:
    """Metric-by-metric verdicts of a re-run against a recorded run (timings left out)."""

    exact: list[str] = field(default_factory=list)
    within: list[str] = field(default_factory=list)
    differs: list[tuple[str, Any, Any, float | None]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)   # recorded, absent from the re-run

    def counts(self) -> dict[str, int]:
        return {"exact": len(self.exact), "within": len(self.within), "differs": len(self.differs),
                "missing": len(self.missing)}

    @property
    def total(self) -> int:
        return sum(self.counts().values())

    @property
    def ok(self) -> bool:
        return not self.differs and not self.missing


def compare_metrics(recorded: dict, rerun: dict) -> Comparison:
    """Compare two runs' `metrics` dicts (see the module docstring for the verdicts)."""
    a, b = flatten(recorded), flatten(rerun)
    out = Comparison()
    for key in sorted(a):
        if TIMING.search(key):
            continue
        if key not in b:
            out.missing.append(key)
        elif _same(a[key], b[key]):
            out.exact.append(key)
        else:
            tol = tolerance(key, a)
            if tol is not None and _is_number(b[key]) and abs(a[key] - b[key]) <= tol:
                out.within.append(key)
            else:
                out.differs.append((key, a[key], b[key], tol))
    return out


__all__ = ["code_hash", "cpu_model", "compare_metrics", "Comparison", "tolerance", "flatten", "TIMING"]
