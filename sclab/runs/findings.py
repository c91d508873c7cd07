"""A notebook's findings: the paper claims it tests, each tied to one recorded metric.

Each notebook states its findings in its record cell (`record_findings`); `sclab report` puts
them in REPORT.md's headline table and `sclab verify` checks that a re-run kept every
finding's direction. A finding is only a pointer: its number is always read from the metrics.

`expect` is the direction the paper's claim predicts for the metric (its 95% CI, where it has
one, is `<metric>_lo` / `<metric>_hi`):
  ">0" / "<0"      an effect: the metric is positive / negative, its whole CI where it has one;
  "~0"             no effect: the CI covers 0;
  "<=0"            no gain: not significantly positive (the CI's lower bound, else the value, <= 0);
  ">KEY" / "<KEY"  the metric is above / below another recorded metric KEY.
`kind` says whether the toy result is "built-in" (a prior the toy world sets, replayed by the
model) or "emergent" (what a method did that the world did not dictate).

    >>> f = Finding("self-check", "Huang et al. 2023", "2310.01798", "intrinsic self-correction does not help",
    ...             "GSM8K, GPT-3.5: 75.9 -> 75.1", "delta", "~0", "built-in")
    >>> status(f, {"delta": 0.01, "delta_lo": -0.02, "delta_hi": 0.04})
    (True, 0.01)
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Sequence

from .verify import flatten

KINDS = ("built-in", "emergent")
_EXPECT = re.compile(r"^(>0|<0|~0|<=0|[<>][^<>=\s].*)$")
_ARXIV = re.compile(r"^\d{4}\.\d{4,5}$")


@dataclass(frozen=True)
class Finding:
    id: str            # short and unique within the notebook
    paper: str         # "Huang et al. 2023"
    arxiv: str         # "2310.01798"
    claim: str         # the paper's claim, in a line
    paper_value: str   # the paper's number, with its setting ("GSM8K, GPT-3.5: 75.9 -> 75.1")
    metric: str        # the dotted key of this run's metric
    expect: str        # ">0", "<0", "~0", ">KEY", "<KEY"
    kind: str          # "built-in" | "emergent"
    note: str = ""

    def check(self) -> None:
        where = f"finding {self.id!r}"
        if not self.id or not re.fullmatch(r"[a-z0-9][a-z0-9_.\-]*", self.id):
            raise ValueError(f"{where}: id must be lower-case letters, digits, '-', '_' or '.'")
        if not _ARXIV.match(self.arxiv):
            raise ValueError(f"{where}: arxiv must look like 2310.01798, got {self.arxiv!r}")
        if not _EXPECT.match(self.expect):
            raise ValueError(f"{where}: expect must be '>0', '<0', '~0', '<=0', '>KEY' or '<KEY', got {self.expect!r}")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("paper", "claim", "paper_value", "metric"):
            if not getattr(self, name).strip():
                raise ValueError(f"{where}: {name} is empty")


def _num(flat: dict, key: str) -> float | None:
    v = flat.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def status(finding: Finding, metrics: dict) -> tuple[bool | None, float | None]:
    """(direction kept?, the metric's value) in a run's metrics; (None, value) when the metric or
    the one it is compared with is missing or NaN."""
    flat = flatten(metrics)
    v = _num(flat, finding.metric)
    if v is None or math.isnan(v):
        return None, v
    e = finding.expect
    lo, hi = _num(flat, finding.metric + "_lo"), _num(flat, finding.metric + "_hi")
    has_ci = lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi))
    if e == ">0":
        return (lo > 0 if has_ci else v > 0), v
    if e == "<0":
        return (hi < 0 if has_ci else v < 0), v
    if e == "<=0":
        return (lo <= 0 if has_ci else v <= 0), v
    if e == "~0":
        return (lo <= 0 <= hi if has_ci else None), v
    other = _num(flat, e[1:])
    if other is None or math.isnan(other):
        return None, v
    return (v > other if e[0] == ">" else v < other), v


def validate(findings: Sequence[Finding | dict], metrics: dict | None = None) -> list[Finding]:
    """Findings as `Finding`s, each checked; with `metrics`, every metric they name must be there."""
    out = [f if isinstance(f, Finding) else Finding(**f) for f in findings]
    seen = set()
    for f in out:
        f.check()
        if f.id in seen:
            raise ValueError(f"finding {f.id!r} appears twice")
        seen.add(f.id)
        if metrics is not None:
            flat = flatten(metrics)
            for key in [f.metric] + ([f.expect[1:]] if f.expect not in (">0", "<0", "~0", "<=0") else []):
                if key not in flat:
                    near = ", ".join(k for k in sorted(flat) if k.split(".")[0] == key.split(".")[0])[:300]
                    raise ValueError(f"finding {f.id!r}: no recorded metric {key!r}"
                                     + (f" (recorded under {key.split('.')[0]}: {near})" if near else ""))
    return out


def record_findings(findings: Sequence[Finding | dict]) -> list[dict]:
    """Check a notebook's findings against what it recorded so far and record them under
    `findings` (definitions only: numbers are always read from the metrics)."""
    from .record import read_metrics, record, recorded, run_dir

    where = run_dir()
    metrics = read_metrics(where)["metrics"] if where is not None else recorded()
    clean = [asdict(f) for f in validate(findings, metrics)]
    record("findings", clean)
    return clean


def from_metrics(metrics: dict) -> list[Finding]:
    """The findings a run recorded (none for a run that recorded none)."""
    return [Finding(**f) for f in metrics.get("findings", []) if isinstance(f, dict)]


__all__ = ["Finding", "KINDS", "status", "validate", "record_findings", "from_metrics"]
