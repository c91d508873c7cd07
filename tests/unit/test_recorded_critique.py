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
    for key in ("self_other", "ptrue_brainstorm_gain"):
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
