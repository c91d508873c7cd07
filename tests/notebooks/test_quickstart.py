"""00_quickstart through `sclab run` with the quick preset: every output file, the world card's
targets (toy world v2) and the core metrics in range."""
import json

import pytest
from conftest import metrics_of, records_of, recount, run_quick

pytestmark = pytest.mark.notebooks
WORDS = ("again", "confirm", "check")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_quick("00_quickstart", tmp_path_factory.mktemp("outputs"))


def test_every_output_file(run_dir):
    for name in ["notebook.ipynb", "params.yaml", "manifest.json", "metrics.json", "records.jsonl"]:
        assert (run_dir / name).exists(), name
    for fig in ["transitions", "by_error_kind", "world_card"]:
        assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 5000, fig
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["params_hash"]


def test_world_card_targets(run_dir):
    card = metrics_of(run_dir)["world_card"]
    assert card["n_problems"] == 1000 and card["n_samples"] == 2    # the quick preset's sample
    # the world's bands: greedy keeps the table's errors, T=1 adds slips
    assert 0.75 <= card["greedy_acc"] <= 0.92
    assert 0.45 <= card["t1_acc"] <= 0.75
    # every kind of error is present in at least 10% of wrong first attempts
    for kind in ("slip", "unsure", "misconception"):
        assert card["t1_error_shares"][kind] >= 0.10, kind
    # the neutral base: no retry word corrects. With 2,000 pairs Δ's standard error is ~0.01,
    # so a neutral model lands within ±0.03 and its CI within 0.01 of covering 0
    for w in WORDS:
        d = card[w]
        assert abs(d["delta"]) <= 0.03, (w, d["delta"])
        assert d["delta_lo"] < 0.01 and d["delta_hi"] > -0.01, w
    # the words differ in their keep prior (0.15 / 0.3 / 0.6 in pretraining): the confident word
    # keeps clearly more often than the other two, so 01's CL-CS points come from the world (the
    # reference build keeps 0.43 after confirm, 0.20-0.21 after again and check)
    keep = {w: card[w]["behaviour"]["keep"] for w in WORDS}
    assert keep["confirm"] > max(keep["again"], keep["check"]) + 0.15
    # a retry is written as a kept answer or a fresh solution (revisions are off in this world)
    for w in WORDS:
        assert card[w]["behaviour"]["malformed"] < 0.03 and card[w]["behaviour"]["revise"] < 0.01
    # a fresh look fixes slips more often than misconceptions (built into the world)
    fx = card["oracle_fix_rate_by_kind"]
    assert fx["slip"]["fix"] > fx["misconception"]["fix"] + 0.1


def test_metrics_in_range(run_dir):
    m = metrics_of(run_dir)
    r = m["retry"]
    assert 0.45 <= r["acc_t1"] <= 0.75                      # the toy world's target
    assert abs(r["delta"]) <= 0.03                          # neutral base: the retry does not help
    assert r["acc_t1_lo"] <= r["acc_t1"] <= r["acc_t1_hi"]
    # the recorded metrics are those of the recorded episodes: counted again from the rows
    records = records_of(run_dir)
    episodes = records[records.run == "episodes"]
    got = recount(episodes)
    for k in ("acc_t1", "acc_t2", "delta_i2c", "delta_c2i", "cl", "cs", "answer_changed_rate"):
        assert r[k] == pytest.approx(got[k], abs=1e-12), k
    # oracle stopping keeps every right first attempt: its Acc@t2 is Acc@t1 + Δi→c of the same rows
    assert m["oracle_stop"]["acc_t2"] == pytest.approx(got["acc_t1"] + got["delta_i2c"], abs=1e-12)
    # the oracle-feedback run is the world card's: its fix rate is P(right at 2 | wrong at 1) there
    # (oracle stopping carries a right attempt 1 into turn 2 unchanged, so the wrong ones decide it)
    fb = recount(records[records.run == "oracle-feedback"])
    assert m["oracle_retry_fix_rate"] == pytest.approx(fb["fix_wrong"], abs=1e-12)
    assert r["extraction_failure_rate"] < 0.05
    # oracle stopping on the same episodes never loses a right answer and so can only look better
    assert m["oracle_stop"]["delta_c2i"] == 0 and m["oracle_stop"]["acc_t2"] >= r["acc_t2"]
    assert 0.3 <= m["oracle_retry_fix_rate"] <= 0.9
    # the error-kind split adds up to SCoRe's transition rates (an identity across two tables)
    k = m["by_error_kind"]
    assert sum(v["contribution"] for g, v in k.items() if g != "right") == pytest.approx(r["delta_i2c"], abs=1e-9)
    assert k["right"]["contribution"] == pytest.approx(r["delta_c2i"], abs=1e-9)


def test_records_table(run_dir):
    rows = [json.loads(l) for l in (run_dir / "records.jsonl").read_text().splitlines()]
    episodes = [r for r in rows if r["run"] == "episodes"]
    assert len(episodes) == 1000 * 2 * 2                    # problems x samples x turns (quick preset)
    keys = {"problem_id", "sample", "turn", "response", "extracted", "how", "correct", "tokens",
            "form", "split", "first_wrong", "error_kind"}
    assert keys <= rows[0].keys()
    # every wrong first attempt carries the kind of its first wrong line
    wrong1 = [r for r in episodes if r["turn"] == 1 and not r["correct"]]
    assert wrong1 and all(r["error_kind"] is not None for r in wrong1)
