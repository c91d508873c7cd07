"""04_critique_models through `sclab run`, shortened (fewer problems, samples and verifier steps than the
quick preset): every section runs, its figures exist, and what it recorded agrees with its own records,
recounted here. The quick run's own numbers are checked in tests/unit/test_recorded_critique.py."""
import numpy as np
import pytest
from conftest import records_of, run_fixtures

pytestmark = pytest.mark.notebooks
SHORT = {"n_problems": 80, "n_samples": 4, "train_problems": 60, "train_samples": 4, "verifier_steps": 12,
         "brainstorm": 2, "n_boot": 100}
FIGURES = ["verifier_training", "auroc_by_kind", "reliability", "step_values", "selective"]


run, metrics = run_fixtures("04_critique_models", SHORT)


def test_every_section_ran_and_drew_its_figure(run, metrics):
    for fig in FIGURES:
        assert (run / "figures" / f"{fig}.png").exists(), fig
    for key in ("signals", "training", "sorm_labels", "step_values", "refinement", "refinement_contrasts",
                "critique_loop", "selective", "self_other", "self_history", "self_fresh", "self_against_other",
                "critique_training", "ptrue_brainstorm_gain", "findings"):
        assert key in metrics, key
    assert {f["id"] for f in metrics["findings"]} >= {"ptrue-trained", "orm-pessimistic", "rerank-vs-draft", "rerank-vs-bo3",
                                                    "self-vs-other", "ptrue-brainstorm"}
    # every verifier trained for the steps asked
    assert all(v["steps"] == SHORT["verifier_steps"] for v in metrics["training"].values())


def test_signals_recounted_from_the_records(run, metrics):
    """The held-out samples' accuracy and each signal's AUROC and Brier score, recounted from records.jsonl."""
    rec = records_of(run)
    assert len(rec) == SHORT["n_problems"] * SHORT["n_samples"]
    assert metrics["samples"]["held_out"]["acc"] == pytest.approx(rec.correct.mean(), abs=1e-9)
    y = rec.correct.astype(bool).to_numpy()
    for name, col in (("orm", "orm"), ("sorm", "sorm"), ("trained_ptrue", "ptrue"), ("pik", "pik")):
        s = rec[col].to_numpy(float)
        pos, neg = s[y], s[~y]
        want = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
        got = metrics["signals"][name]
        assert got["auroc"] == pytest.approx(want, abs=1e-9), name
        assert got["brier"] == pytest.approx(np.mean((s - y) ** 2), abs=1e-9), name
        assert got["auroc_lo"] <= got["auroc"] <= got["auroc_hi"]
    # P(IK) reads the question alone: one value per problem
    assert rec.groupby("problem_id").pik.nunique().eq(1).all()


def test_refinement_and_the_loop_are_consistent(run, metrics):
    ref = metrics["refinement"]
    rec = records_of(run)
    draft = rec[rec["sample"] == 0].correct.mean()
    assert ref["draft"]["acc"] == pytest.approx(draft, abs=1e-9)
    for k, v in ref.items():
        assert v["acc_lo"] <= v["acc"] <= v["acc_hi"], k
    loop = metrics["critique_loop"]
    # the oracle retries only wrong attempts: it can never break a right one
    assert loop["oracle_feedback"]["delta_c2i"] == 0.0
    assert loop["oracle_feedback"]["delta"] >= loop["intrinsic_retry"]["delta_lo"]
    sv = metrics["step_values"]
    for v in ("sorm", "orm", "line_prob_min"):
        assert 0.0 <= sv[v]["agree_v_star"] <= 1.0


def test_critique_training_data_and_evaluation_are_consistent(run, metrics):
    """Critique as training data: each arm's data is the right explorations plus its right rewrites, the
    untrained arm is the held-out records themselves, and every tuned arm trained on its own data."""
    ct = metrics["critique_training"]
    rec = records_of(run)
    data = ct["data"]
    n_right = data["self_training"]["examples"]
    assert n_right == round(ct["exploration_acc"] * SHORT["train_problems"])   # one exploration per training problem
    assert data["self_training"]["added_by_rewrites"] == 0
    for arm in ("critique", "fresh"):
        assert data[arm]["examples"] == n_right + data[arm]["added_by_rewrites"]
        # a rewrite is added only for an exploration the ORM objected to
        assert data[arm]["added_by_rewrites"] <= round(ct["objected"] * SHORT["train_problems"])
        assert data[arm]["problems_covered"] >= data["self_training"]["problems_covered"]
    assert all(v["sft_steps"] > 0 for v in data.values())
    assert ct["arms"]["policy"]["acc"] == pytest.approx(rec.correct.mean(), abs=1e-9)
    assert ct["arms"]["policy"]["vs_policy"] == 0.0
    for k, v in ct["arms"].items():
        assert v["acc_lo"] <= v["acc"] <= v["acc_hi"], k
    d = ct["critique_vs_self_training"]
    assert d["diff"] == pytest.approx(ct["arms"]["critique"]["acc"] - ct["arms"]["self_training"]["acc"], abs=1e-9)
    assert "critique-train" in {f["id"] for f in metrics["findings"]}


def test_self_against_other_reads_the_same_attempts(run, metrics):
    """GCM's four ORMs are scored on the same held-out attempts: the paired differences are the
    differences of the table's AUROCs, and the self ORM's AUROC is section 2's."""
    sa = metrics["self_against_other"]
    assert set(sa) == {"self", "other_models_weights", "other_models_history", "fresh_network", "other"}
    assert sa["self"]["auroc"] == pytest.approx(metrics["signals"]["orm"]["auroc"], abs=1e-12)
    for key, arm in (("self_other", "other_models_weights"), ("self_history", "other_models_history"),
                     ("self_fresh", "fresh_network")):
        g = metrics[key]
        assert g["auroc_a"] == pytest.approx(sa["self"]["auroc"], abs=1e-12)
        assert g["auroc_b"] == pytest.approx(sa[arm]["auroc"], abs=1e-12), key
        assert g["diff_lo"] <= g["diff"] <= g["diff_hi"], key
    o = sa["other"]
    assert 0 < o["other_train_acc"] < 1 and -1 <= o["problem_acc_correlation"] <= 1
