"""03_sharpening through `sclab run`, shortened (fewer problems, samples and steps than the quick preset):
every section runs, its figures exist, and what it recorded agrees with its own records, recounted here.

The acceptance numbers themselves are checked on the recorded quick run (tests/unit/test_recorded_sharpening.py),
which this shortened run is too small to reproduce."""
from math import comb

import numpy as np
import pytest
from conftest import records_of, run_fixtures

pytestmark = pytest.mark.notebooks
SHORT = {"n_problems": 120, "n_samples": 8, "sft_train_problems": 60, "sft_epochs": 1, "eval_samples": 2,
         "rl_betas": "1.0", "rl_steps": 4, "dser_problems": 30, "dser_rounds": 3, "dser_vote_last": 2,
         "srgen_problems": 30, "search_problems": 24, "n_boot": 200}
FIGURES = ["bon_curves", "bon_by_kind", "coverage", "rl_exponent", "dser", "srgen", "step_search", "compute_matched"]


run, metrics = run_fixtures("03_sharpening", SHORT)


def test_every_section_ran_and_drew_its_figure(run, metrics):
    for fig in FIGURES:
        assert (run / "figures" / f"{fig}.png").exists(), fig
    for key in ("curves", "bon", "by_class", "coverage", "sft", "rl", "dser", "srgen", "search", "findings"):
        assert key in metrics, key
    assert {f["id"] for f in metrics["findings"]} >= {"bon-vs-sampler", "sft-sharpening", "dser-stationary"}


def test_best_of_n_pass_at_n_and_the_mean_recounted_from_the_records(run, metrics):
    """best-of-n over all n samples is the mean correctness of the top-reward samples (ties split),
    pass@n is "any sample right", the T = 1 mean the mean: counted here from records.jsonl."""
    rec = records_of(run)
    pool, greedy = rec[rec.strategy == "pool"], rec[rec.strategy == "greedy"]
    n = SHORT["n_samples"]
    assert pool.groupby("problem_id").size().eq(n).all() and pool.problem_id.nunique() == SHORT["n_problems"]
    best, any_right = [], []
    for _, g in pool.groupby("problem_id"):
        top = g[g.self_reward == g.self_reward.max()]
        best.append(top.correct.mean())
        any_right.append(g.correct.any())
    c = metrics["curves"]["all"]
    assert c["best_of_n"][f"N{n}"]["acc"] == pytest.approx(np.mean(best), abs=1e-9)
    assert c["pass_at_k"][f"N{n}"]["acc"] == pytest.approx(np.mean(any_right), abs=1e-9)
    assert c["t1_mean"]["N1"]["acc"] == pytest.approx(pool.correct.mean(), abs=1e-9)
    assert c["greedy"]["N1"]["acc"] == pytest.approx(greedy.correct.mean(), abs=1e-9)
    # pass@2 by the unbiased estimator 1 - C(n-c, 2)/C(n, 2), per problem
    right = pool.groupby("problem_id").correct.sum()
    want = np.mean([1 - comb(n - int(k), 2) / comb(n, 2) for k in right])
    assert c["pass_at_k"]["N2"]["acc"] == pytest.approx(want, abs=1e-9)
    for m in ("best_of_n", "maj_at_k", "pass_at_k"):
        r = c[m][f"N{n}"]
        assert r["acc_lo"] <= r["acc"] <= r["acc_hi"]


def test_dser_and_srgen_recounted_from_the_records(run, metrics):
    """DSER's p_IC and p_CI over rounds 1-2, its last-round accuracy, and SRGen's paired Δ, fixed and
    broken, counted here from the chains' and SRGen's rows in records.jsonl."""
    rec = records_of(run)
    ch = rec[rec.strategy == "dser:" + metrics["dser"]["strategy"]]
    wide = ch.pivot_table(index=["problem_id", "sample"], columns="turn", values="correct", aggfunc="first").astype(bool)
    assert list(wide.columns) == list(range(1, SHORT["dser_rounds"] + 2)) and len(wide) == SHORT["dser_problems"] * 4
    a, b = wide[[1, 2]].to_numpy(), wide[[2, 3]].to_numpy()
    r = metrics["dser"]["rates"]["all"]
    assert r["p_ic"] == pytest.approx((~a & b).sum() / (~a).sum(), abs=1e-9)
    assert r["p_ci"] == pytest.approx((a & ~b).sum() / a.sum(), abs=1e-9)
    assert r["acc_last"] == pytest.approx(wide[SHORT["dser_rounds"] + 1].mean(), abs=1e-9)
    plain = rec[rec.strategy == "srgen:plain"].set_index(["problem_id", "sample"]).correct.astype(bool)
    for name in ("paper", "tuned", "control"):
        mine = rec[rec.strategy == f"srgen:{name}"].set_index(["problem_id", "sample"]).correct.astype(bool)
        assert mine.index.sort_values().equals(plain.index.sort_values()) and len(mine) == SHORT["srgen_problems"]
        mine = mine.loc[plain.index]
        sr = metrics["srgen"][name]["all"]
        assert sr["delta"] == pytest.approx(mine.mean() - plain.mean(), abs=1e-9)
        assert sr["fixed"] == pytest.approx((~plain & mine).mean(), abs=1e-9)
        assert sr["broken"] == pytest.approx((plain & ~mine).mean(), abs=1e-9)
    for name, s_ in metrics["search"].items():
        rows = rec[rec.strategy == f"search:{name}"]
        assert len(rows) == SHORT["search_problems"], name
        assert s_["acc"] == pytest.approx(rows.correct.mean(), abs=1e-9)
        assert s_["tokens"] == pytest.approx(rows.generated_tokens.mean(), abs=1e-6)


def test_the_trained_results_are_consistent(metrics):
    sft = metrics["sft"]
    assert sft["training"]["examples"] == SHORT["sft_train_problems"]          # one pick per training problem
    assert sft["sft"]["acc_lo"] <= sft["sft"]["acc"] <= sft["sft"]["acc_hi"]
    assert sft["sft"]["lift"] == pytest.approx(sft["sft"]["acc"] - metrics["curves"]["all"]["t1_mean"]["N1"]["acc"], abs=1e-9)
    rl = metrics["rl"]["beta_1"]
    assert rl["fit"]["n_problems"] > 0 and rl["fit"]["gamma_lo"] <= rl["fit"]["gamma"] <= rl["fit"]["gamma_hi"]
    assert rl["training"]["steps"] == SHORT["rl_steps"]
