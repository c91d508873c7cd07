"""02_rl_correction through `sclab run`, shortened (fewer problems and steps than the quick preset):
every method trains and is evaluated, SCoRe's policy moves, the metrics are consistent and in range.

The acceptance numbers themselves are checked on the recorded quick run (outputs/02_rl_correction/quick),
which this shortened run is too small to reproduce."""
import pytest
from conftest import metrics_of, run_quick

pytestmark = pytest.mark.notebooks
SHORT = {"n_problems": 150, "train_problems": 300, "stage1_steps": 4, "stage2_steps": 6, "eval_problems": 40,
         "eval_every": 3, "baseline_samples": 2, "sft_budget": 60, "parallel_problems": 30, "parallel_k": 4,
         "n_boot": 200, "rl_prompts_per_step": 8}
METHODS = ["base", "STaR", "Pair-SFT", "SFT synthetic mistakes", "DPO RISE", "DPO SCL", "SCoRe",
           "SCoRe w/o stage I", "SCoRe w/o shaping", "single-turn RL", "attempt-2-only RL"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_quick("02_rl_correction", tmp_path_factory.mktemp("outputs"), SHORT)


@pytest.fixture(scope="module")
def metrics(run):
    return metrics_of(run)


def test_every_method_is_evaluated_on_the_same_problems(metrics):
    assert set(metrics["method"]) == set(METHODS)
    for name, m in metrics["method"].items():
        assert m["n_problems"] == SHORT["n_problems"], name
        assert m["delta"] == pytest.approx(m["delta_i2c"] - m["delta_c2i"], abs=1e-12)
        assert m["delta_lo"] <= m["delta"] <= m["delta_hi"]
        for k in ("acc_t1", "acc_t2", "keep_right", "fix_wrong", "acc_parallel", "answer_changed_rate"):
            assert 0 <= m[k] <= 1, (name, k)
        # keep/fix are the transition rates conditioned on attempt 1
        assert m["keep_right"] == pytest.approx(1 - m["delta_c2i"] / m["acc_t1"], abs=1e-9)


def test_the_base_model_is_competent_and_neutral(metrics):
    b = metrics["method"]["base"]
    assert 0.5 < b["acc_t1"] < 0.8          # the toy model at T=1 (0.64 on larger samples)
    assert abs(b["delta"]) < 0.12           # no correction skill before training


def test_score_policy_moved_and_diagnostics_recorded(metrics):
    assert metrics["score/param_change"] > 0
    assert metrics["score/steps"] == SHORT["stage1_steps"] + SHORT["stage2_steps"]
    s = metrics["method"]["SCoRe"]
    for k in ("acc_t2_gold", "acc_t2_swap", "swap_follows_donor", "edit_at_first_wrong"):
        assert 0 <= s[k] <= 1, k
    # a clean attempt 1 is kept or redone right far more often than a random other problem's attempt
    assert s["acc_t2_gold"] > s["acc_t2_swap"]


def test_training_curves_and_budget_recorded(run, metrics):
    for fig in ("score_training_curves", "answer_changed_over_training", "second_attempt_diagnostics",
                "attempt2_only_leakage",
                "sequential_vs_parallel", "methods_summary"):
        assert (run / "figures" / f"{fig}.png").exists(), fig
    curve = metrics["score/curve"]
    assert curve["step"][0] == 0 and curve["step"][-1] == SHORT["stage1_steps"] + SHORT["stage2_steps"]
    assert all(0 <= a <= 1 for a in curve["acc_t1"] + curve["acc_t2"] + curve["changed"])
    b = metrics["budget"]
    assert set(b) == {"2", "4"} and all(0 <= v <= 1 for r in b.values() for v in r.values())
    assert (run / "records.jsonl").exists()
