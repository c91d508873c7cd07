"""`make reproduce`: re-execute every notebook and verify the committed results against it.

Re-runs go to `reproduced/<stem>/<preset>/` (git-ignored), never over the committed
`outputs/<stem>/<preset>/`; a re-run is skipped when one with the same params and code is
already there, so a second `make reproduce` only verifies, and touching a file under `sclab/`
runs the notebooks again. Verification (`verify`) compares the two runs metric by metric
(`sclab.runs.verify.compare_metrics`: exact, within the stated tolerance, differs) and checks
that every recorded finding kept its direction.

    >>> from sclab.runs.reproduce import reproduced_root
    >>> reproduced_root().name
    'reproduced'
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .execute import read_manifest, run_many, run_path, runnable
from .findings import from_metrics, status
from .params import ParamError, outputs_root, project_root
from .record import atomic_write, read_metrics
from .verify import Comparison, compare_metrics


def reproduced_root() -> Path:
    """SCLAB_REPRODUCED if set, else `<project root>/reproduced`."""
    env = os.environ.get("SCLAB_REPRODUCED")
    return Path(env).expanduser().resolve() if env else project_root() / "reproduced"


@dataclass
class Verification:
    stem: str
    preset: str
    recorded: Path
    rerun: Path
    comparison: Comparison
    findings: list[tuple[str, bool | None, bool | None]]   # (id, the paper's direction held in recorded, in re-run)
    notes: list[str]

    @property
    def ok(self) -> bool:
        """Reproduced: no metric beyond its tolerance, and every finding as the recorded run had it
        (a paper claim the recorded run did not reproduce is not a failure of the re-run)."""
        return self.comparison.ok and all(new == rec for _, rec, new in self.findings)

    def summary(self) -> str:
        c = self.comparison.counts()
        kept = sum(1 for _, rec, new in self.findings if new == rec)
        held = sum(1 for _, _, new in self.findings if new)
        lines = [f"{self.stem} [{self.preset}]: {c['exact']} of {self.comparison.total} recorded metrics reproduced "
                 f"exactly, {c['within']} within tolerance, {c['differs']} differ, {c['missing']} missing; "
                 f"findings: {kept} of {len(self.findings)} as recorded ({held} hold the paper's direction)"]
        lines += [f"  note: {n}" for n in self.notes]
        for key, a, b, tol in self.comparison.differs[:20]:
            t = f" (tolerance {tol:.3g})" if tol is not None else ""
            lines.append(f"  differs: {key}: recorded {_short(a)}, re-run {_short(b)}{t}")
        if len(self.comparison.differs) > 20:
            lines.append(f"  ... and {len(self.comparison.differs) - 20} more (see {self.rerun / 'verify.json'})")
        for key in self.comparison.missing[:10]:
            lines.append(f"  missing from the re-run: {key}")
        for fid, rec, new in self.findings:
            if new != rec:
                lines.append(f"  finding {fid}: the paper's direction {'holds' if rec else 'does not hold'} in the "
                             f"recorded run, {'holds' if new else 'does not hold' if new is False else 'is not measurable'} "
                             "in the re-run")
        return "\n".join(lines)


def _short(v) -> str:
    s = f"{v:.4g}" if isinstance(v, float) else repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def verify(stem: str, preset: str = "quick", rerun_root: str | os.PathLike | None = None,
           outputs: str | os.PathLike | None = None) -> Verification:
    """Compare the committed run `outputs/<stem>/<preset>/` with its re-run under `rerun_root`."""
    recorded = run_path(stem, preset, outputs_root(outputs))
    rerun = Path(rerun_root or reproduced_root()) / stem / preset
    for path, what in ((recorded, "recorded run"), (rerun, "re-run")):
        m = read_manifest(path)
        if not m or m.get("status") != "ok":
            hint = "" if what == "recorded run" else " (run `make reproduce` or `sclab reproduce` first)"
            raise ParamError(f"verify {stem}: no finished {what} in {path}{hint}")
    a, b = read_metrics(recorded), read_metrics(rerun)
    notes = []
    ma, mb = a["manifest"], b["manifest"]
    if ma.get("git_dirty"):
        notes.append(f"the recorded run came from a dirty tree at {str(ma.get('git_sha'))[:10]}: "
                     "its code is not a commit's")
    if ma.get("code_hash") != mb.get("code_hash"):
        notes.append(f"code differs: recorded with code {ma.get('code_hash') or 'unknown'}, "
                     f"re-run with {mb.get('code_hash')}")
    if ma.get("params_hash") != mb.get("params_hash"):
        notes.append(f"params differ: {ma.get('params_hash')} recorded, {mb.get('params_hash')} re-run")
    if ma.get("cpu") != mb.get("cpu"):
        notes.append(f"another CPU: {ma.get('cpu') or 'unknown'} recorded, {mb.get('cpu')} re-run")
    if ma.get("toy_weights_sha256") != mb.get("toy_weights_sha256"):
        notes.append(f"other toy weights: {ma.get('toy_weights_sha256')} recorded, {mb.get('toy_weights_sha256')} re-run")
    comparison = compare_metrics(a["metrics"], b["metrics"])
    findings = [(f.id, status(f, a["metrics"])[0], status(f, b["metrics"])[0]) for f in from_metrics(a["metrics"])]
    v = Verification(stem, preset, recorded, rerun, comparison, findings, notes)
    atomic_write(rerun / "verify.json", json.dumps({
        "counts": comparison.counts(), "notes": notes, "within": comparison.within,
        "differs": [{"metric": k, "recorded": x, "rerun": y, "tolerance": t} for k, x, y, t in comparison.differs],
        "missing": comparison.missing,
        "findings": [{"id": i, "recorded": r, "rerun": n} for i, r, n in findings]}, indent=1, default=str) + "\n")
    return v


def reproduce(preset: str = "quick", stems: list[str] | None = None, force: bool = False,
              timeout_s: float = 1800) -> list[Verification]:
    """Re-run every notebook with a committed `preset` run (or `stems`) into `reproduced/`,
    skipping re-runs of the same params and code unless `force`, then verify each."""
    stems = stems or [s for s in runnable(preset) if read_manifest(run_path(s, preset))]
    if not stems:
        raise ParamError(f"reproduce: no committed {preset!r} run under {outputs_root(None)}")
    results = run_many(stems, preset, outputs_root=reproduced_root(), timeout_s=timeout_s, skip_finished=not force)
    out = []
    for r in results:
        if r.ok:
            out.append(verify(r.stem, preset))
    return out


__all__ = ["reproduce", "verify", "Verification", "reproduced_root"]
