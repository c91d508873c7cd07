"""00_quickstart through `sclab run` with the quick preset: every output file, metrics in range."""
import json

import pytest
from conftest import run_quick

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_quick("00_quickstart", tmp_path_factory.mktemp("outputs"))


def test_every_output_file(run_dir):
    for name in ["notebook.ipynb", "params.yaml", "manifest.json", "metrics.json", "records.jsonl"]:
        assert (run_dir / name).exists(), name
    assert (run_dir / "figures" / "transitions.png").stat().st_size > 5000
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["params_hash"]


def test_metrics_in_range(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    r = m["retry"]
    assert 0.4 <= r["acc_t1"] <= 0.8                       # the toy world's target
    assert r["delta_lo"] <= 0.02 and abs(r["delta"]) < 0.06   # neutral base: the retry does not help
    assert r["delta"] == pytest.approx(r["delta_i2c"] - r["delta_c2i"], abs=1e-12)
    assert r["acc_t1_lo"] <= r["acc_t1"] <= r["acc_t1_hi"]
    assert r["extraction_failure_rate"] < 0.05
    # oracle stopping on the same episodes never loses a right answer and so can only look better
    assert m["oracle_stop"]["delta_c2i"] == 0 and m["oracle_stop"]["acc_t2"] >= r["acc_t2"]
    assert 0.3 <= m["oracle_retry_fix_rate"] <= 0.9


def test_records_table(run_dir):
    rows = [json.loads(l) for l in (run_dir / "records.jsonl").read_text().splitlines()]
    retry = [r for r in rows if r["strategy"] == "retry"]
    assert len(retry) == 300 * 4 * 2                        # problems x samples x turns (quick preset)
    assert {"problem_id", "sample", "turn", "response", "extracted", "how", "correct", "tokens"} <= rows[0].keys()
