"""The recorded quick run of 04_critique_models (outputs/04_critique_models/quick) reports what the critique
family's acceptance asks for, and its numbers say what its Summary reads from them: checked on the committed
metrics (a shortened re-run, tests/notebooks/test_critique_run.py, is too small to reproduce them)."""
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
RUN = Path(__file__).resolve().parents[2] / "outputs" / "04_critique_models" / "quick" / "metrics.json"
SIGNALS = {"sequence_probability", "prompted_ptrue", "trained_ptrue", "ptrue_brainstorm", "pik", "orm", "orm_fresh_network",
           "sorm"}
KINDS = ("slip", "unsure", "misconception")


@pytest.fixture(scope="module")
def m():
    if not RUN.exists():
        pytest.skip("04_critique_models has no recorded quick run yet")
    return json.loads(RUN.read_text())["metrics"]


def test_every_signal_has_auroc_and_calibration_with_cis_split_by_error_kind(m):
    assert set(m["signals"]) == SIGNALS
    for name, s in m["signals"].items():
        for key in ("auroc", "auroc_within", "brier") + tuple(f"auroc_{k}" for k in KINDS):
            assert s[f"{key}_lo"] <= s[key] <= s[f"{key}_hi"], (name, key)
        for key in ("ece", "rms"):   # biased upward under resampling: the point may sit below its interval
            assert s[f"{key}_lo"] <= s[f"{key}_hi"], (name, key)
    # 500 held-out problems x 4 samples judged; the verifiers trained on another split
    assert m["samples"]["held_out"]["n"] == 2000


def test_the_untrained_verdict_is_at_chance_and_the_trained_heads_are_above_it(m):
    s = m["signals"]
    # the toy base's keep prior after `confirm` does not depend on correctness (a neutral base): chance
    assert s["prompted_ptrue"]["auroc_lo"] <= 0.5 <= s["prompted_ptrue"]["auroc_hi"]
    for name in ("trained_ptrue", "orm", "sorm", "pik"):
        assert s[name]["auroc_lo"] > 0.5, name
    # within n the trained heads lose some of their pooled AUROC (part of it is telling hard problems apart)
    assert s["pik"]["auroc_within"] < s["pik"]["auroc"]


def test_step_values_against_the_exact_v_star_and_v_pi(m):
    sv = m["step_values"]
    # the ORM is pessimistic on prefixes that are still right: below the SORM, and on this run below V^π too
    assert sv["orm_gap"]["sorm_minus_orm_lo"] > 0 and sv["orm_gap"]["orm_minus_v_pi_hi"] < 0
    # the policy's own min line probability separates right from wrong prefixes far better than either head
    assert sv["line_prob_min"]["agree_v_star_lo"] > max(sv["sorm"]["agree_v_star_hi"], sv["orm"]["agree_v_star_hi"])


def test_paired_auroc_gains_are_recorded_with_cis(m):
    for key in ("self_other", "self_history", "self_fresh", "ptrue_brainstorm_gain"):
        g = m[key]
        assert g["diff"] == pytest.approx(g["auroc_a"] - g["auroc_b"], abs=1e-12)
        assert g["diff_lo"] <= g["diff"] <= g["diff_hi"], key


def test_refinement_contrasts_are_recorded_with_cis(m):
    c = m["refinement_contrasts"]
    for key in ("local_sorm_vs_global", "local_lineprob_vs_global", "reranked_vs_best_of_3"):
        assert c[key]["diff_lo"] <= c[key]["diff"] <= c[key]["diff_hi"], key
    # with a localiser that sees the errors, local refinement beats global refinement
    assert c["local_lineprob_vs_global"]["diff_lo"] > 0
    # oracle feedback is the loop's upper bound and never breaks a right answer
    loop = m["critique_loop"]
    assert loop["oracle_feedback"]["delta_c2i"] == 0 and loop["oracle_feedback"]["delta_lo"] > loop["orm_critic"]["delta_hi"]


def test_calibration_by_error_kind(m):
    """ECE on each kind's subset and the confidence in the wrong attempts of each kind, for every signal.
    The policy's own sequence probability is near 0 on slipped attempts (a slip is a result the policy itself
    finds unlikely) and high on misconceptions (the wrong value is what the policy believes): the world's
    error kinds, seen through the policy's likelihood."""
    for name, s in m["signals"].items():
        for k in KINDS:
            assert s[f"ece_{k}_lo"] <= s[f"ece_{k}_hi"], (name, k)
            assert 0.0 <= s[f"conf_wrong_{k}"] <= 1.0, (name, k)
    sp = m["signals"]["sequence_probability"]
    assert sp["conf_wrong_slip_hi"] < 0.1 < 0.4 < sp["conf_wrong_misconception_lo"]


def test_critique_as_training_data(m):
    ct = m["critique_training"]
    d, arms = ct["data"], ct["arms"]
    for arm in ("critique", "fresh"):
        assert d[arm]["examples"] == d["self_training"]["examples"] + d[arm]["added_by_rewrites"] > d["self_training"]["examples"]
    # 300 training problems, one exploration each: self-training's data is the right ones
    assert d["self_training"]["examples"] == round(ct["exploration_acc"] * 300)
    for k, v in arms.items():
        assert v["acc_lo"] <= v["acc"] <= v["acc_hi"], k
    # SFT on the policy's own right samples moves it far above itself (03's SFT-sharpening does the same),
    # and most on misconception problems, where a right sample teaches the entry the policy believes wrong
    assert arms["self_training"]["vs_policy_lo"] > 0.2
    assert arms["self_training"]["acc_misconception"] - arms["policy"]["acc_misconception"] > 0.3
    for key in ("critique_vs_self_training", "critique_vs_fresh"):
        assert ct[key]["diff_lo"] <= ct[key]["diff"] <= ct[key]["diff_hi"], key


def test_self_against_other_models(m):
    sa = m["self_against_other"]
    # GCM: an ORM on another build's weights, trained on the same samples, predicts the policy's correctness
    # as well as the policy's own (the interval holds 0); a network with no pretrained weights does worse
    assert m["self_other"]["diff_lo"] <= 0 <= m["self_other"]["diff_hi"]
    assert m["self_fresh"]["diff_lo"] > 0
    assert sa["self"]["auroc"] == pytest.approx(m["signals"]["orm"]["auroc"], abs=1e-12)
    # the two builds share the world's error table: their per-problem accuracies correlate
    assert sa["other"]["problem_acc_correlation"] > 0.5
