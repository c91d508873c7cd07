"""01_intrinsic through `sclab run` with the quick preset: the issue's acceptance checks as metric ranges."""
import pytest
from conftest import metrics_of, run_quick

pytestmark = pytest.mark.notebooks
CI_KEYS = ["acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "cl", "cs", "rss"]


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    run = run_quick("01_intrinsic", tmp_path_factory.mktemp("outputs"))
    assert (run / "figures" / "cl_cs_tradeoff.png").exists() and (run / "records.jsonl").exists()
    return metrics_of(run)


def test_every_strategy_has_metrics_with_cis(metrics):
    names = [k.split("/", 1)[1] for k in metrics if k.startswith("strategy/")]
    assert len(names) == 8
    for n in names:
        m = metrics[f"strategy/{n}"]
        for k in CI_KEYS:
            assert m[f"{k}_lo"] <= m[k] <= m[f"{k}_hi"], (n, k)
        assert m["delta"] == pytest.approx(m["delta_i2c"] - m["delta_c2i"], abs=1e-12)
        assert {"answer_changed_rate", "tokens_per_problem"} <= m.keys()


def test_intrinsic_retry_does_not_help_and_oracle_stop_looks_better(metrics):
    retry = metrics["strategy/retry"]
    assert retry["delta_lo"] <= 0                      # Δ is not significantly positive (Huang et al.)
    assert metrics["stopping/oracle"]["acc_t2"] > metrics["stopping/intrinsic"]["acc_t2"]
    assert metrics["stopping/oracle"]["delta_c2i"] == 0


def test_are_you_sure_hurts_as_the_doubt_prior_says(metrics):
    ays = metrics["strategy/are-you-sure"]
    assert ays["delta_hi"] < 0 and ays["delta_c2i"] > ays["delta_i2c"]
    d = metrics["doubt_prior"]
    deltas = [d[q]["delta"] for q in sorted(d, key=float)]
    assert deltas == sorted(deltas, reverse=True) and abs(deltas[0]) < 0.05   # no prior, no damage


def test_confident_and_critical_prompts_trade_cl_for_cs(metrics):
    conf, crit = metrics["strategy/cct-confident"], metrics["strategy/cct-critical"]
    assert conf["cl"] > crit["cl"] and conf["cs"] < crit["cs"]


def test_multi_round_and_multiple_choice_recorded(metrics):
    for name, m in metrics["multi_round"].items():
        assert m["predicted"][0] == pytest.approx(m["observed"][0])
        assert len(m["observed"]) == 6 and 0 <= m["rounds_2_on_within_ci"] <= 4
    mc = metrics["generation_vs_mc"]
    assert mc["retry (multiple choice)"]["acc_t1"] > 0.4     # options can only help a computation that works


def test_sft_methods_recorded_with_equal_budgets(metrics):
    assert set(metrics["sft"]) == {"vanilla SFT", "CCT", "CCT + PAM"}
    totals = {n: c["total"] for n, c in metrics["sft_data"].items()}
    assert len(set(totals.values())) == 1
    for r in metrics["sft"].values():
        assert r["cl_lo"] <= r["cl"] <= r["cl_hi"] and r["cs_lo"] <= r["cs"] <= r["cs_hi"]
