"""Run a notebook through `sclab run` (a subprocess, as a user would) into a temporary outputs dir."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(stem: str, out: Path, overrides: dict | None = None) -> Path:
    """Execute `stem` with the quick preset (and `-p KEY VALUE` overrides, for a shortened run);
    returns its run directory (asserts success): `quick`, or `quick+<hash>` for a run with overrides."""
    from sclab.runs.execute import run_name

    cmd = [sys.executable, "-m", "sclab.cli", "run", stem, "--preset", "quick", "--outputs", str(out)]
    for key, value in (overrides or {}).items():
        cmd += ["-p", key, str(value)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500, env=os.environ.copy())
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out / stem / run_name("quick", {k: str(v) for k, v in (overrides or {}).items()})


def run_fixtures(stem: str, overrides: dict | None = None):
    """The module-scoped `run` and `metrics` fixtures of a notebook's test file: one shortened run per
    module (`run = run_quick(...)`), its metrics.json read once. Use: `run, metrics = run_fixtures(stem, SHORT)`."""
    import pytest

    @pytest.fixture(scope="module")
    def run(tmp_path_factory):
        return run_quick(stem, tmp_path_factory.mktemp("outputs"), overrides)

    @pytest.fixture(scope="module")
    def metrics(run):
        return metrics_of(run)

    return run, metrics


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["metrics"]


def records_of(run: Path):
    """The run's records.jsonl as a DataFrame."""
    import pandas as pd

    return pd.read_json(run / "records.jsonl", lines=True, dtype={"extracted": object})


def recount(records) -> dict:
    """Acc@t1, Acc@t2, Δi→c, Δc→i, keep/fix, CL/CS and the answer-changed rate of two-attempt
    records, counted here from the rows (pairs of turn 1 and 2 per problem and sample), apart from
    sclab.metrics: what a notebook recorded must agree with its own records."""
    import numpy as np
    import pandas as pd

    a = records[records.turn == 1].set_index(["problem_id", "sample"]).sort_index()
    b = records[records.turn == 2].set_index(["problem_id", "sample"]).sort_index()
    assert a.index.equals(b.index), "every episode has both attempts"
    r1, r2 = a.correct.astype(bool).to_numpy(), b.correct.astype(bool).to_numpy()
    # the answer changed unless both attempts extracted the same answer or both failed to extract one
    # (sclab.records.answer_changed's definition: a failure against an answer is a change)
    same = [(pd.isna(x) and pd.isna(y)) or (not pd.isna(x) and not pd.isna(y) and str(x) == str(y))
            for x, y in zip(a.extracted, b.extracted)]
    n = len(r1)
    # CL and CS as Yang et al. define them: per problem P_a = its Acc@t1, P_b = P(kept | right),
    # P_c = P(fixed | wrong); CL = Σ P_a·P_b / Σ P_a, CS = Σ (1 − P_a)·P_c / Σ (1 − P_a)
    pid = a.index.get_level_values(0)
    per = pd.DataFrame({"p": pid, "r1": r1, "keep": r1 & r2, "fix": ~r1 & r2}).groupby("p").mean()
    return {"acc_t1": r1.sum() / n, "acc_t2": r2.sum() / n, "delta_i2c": (~r1 & r2).sum() / n,
            "delta_c2i": (r1 & ~r2).sum() / n, "keep_right": (r1 & r2).sum() / r1.sum(),
            "fix_wrong": (~r1 & r2).sum() / (~r1).sum(), "answer_changed_rate": 1 - np.mean(same),
            "cl": per.keep.sum() / per.r1.sum(), "cs": per.fix.sum() / (1 - per.r1).sum(),
            "n_problems": pid.nunique()}
