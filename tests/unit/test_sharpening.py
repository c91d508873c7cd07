"""sclab.sharpening's pure parts: the exact best-of-N estimator against brute force over subsets,
curves against independent computations, selections blind to the grade, coverage by hand."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from sclab.metrics import maj_at_k, pass_at_k_df
from sclab.sharpening import (coverage, coverage_by_n, curves, gold_path_kind, greedy_kind, p_in_sample, per_problem,
                              pick_kinds, pick_weights, picks, problem_classes, undercovered)

pytestmark = pytest.mark.unit


def brute_force_weights(rewards, N):
    """P(j picked) by enumerating every N-subset; the top reward of a subset wins, ties split evenly."""
    n, w = len(rewards), np.zeros(len(rewards))
    subsets = list(itertools.combinations(range(n), N))
    for sub in subsets:
        top = max(rewards[j] for j in sub)
        winners = [j for j in sub if rewards[j] == top]
        for j in winners:
            w[j] += 1 / len(winners) / len(subsets)
    return w


@pytest.mark.parametrize("seed", range(6))
def test_pick_weights_equal_enumeration_of_subsets(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    rewards = rng.integers(-3, 1, size=n).astype(float)  # few distinct values: many ties
    if seed % 2:
        rewards = rng.normal(size=n)                      # no ties
    for N in range(1, n + 1):
        assert pick_weights(rewards, N) == pytest.approx(brute_force_weights(list(rewards), N), abs=1e-12)


def test_pick_weights_limits():
    r = [-1.0, -4.0, -1.0, -2.0]
    assert pick_weights(r, 1).tolist() == [0.25] * 4                       # N = 1: a uniform draw
    assert pick_weights(r, 4).tolist() == [0.5, 0.0, 0.5, 0.0]             # N = n: the top group, tie split
    # no ties, rank i (0 = best) gets C(n-1-i, N-1)/C(n, N): n=4, N=2 -> 3/6, 2/6, 1/6, 0
    assert pick_weights([4.0, 3.0, 2.0, 1.0], 2) == pytest.approx([3 / 6, 2 / 6, 1 / 6, 0])


@pytest.mark.parametrize("bad, match", [(([], 1), "non-empty"), (([0.0, np.nan], 1), "NaN"),
                                        (([0.0, 1.0], 3), "N must satisfy"), (([0.0], 0), "N must satisfy")])
def test_pick_weights_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        pick_weights(*bad)


def pool(n_problems=6, n=6, seed=0):
    """Random samples: rewards with ties, answers from a small set, right iff the answer is '0'."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_problems):
        for s in range(n):
            ans = str(int(rng.integers(0, 3)))
            rows.append({"problem_id": f"p{p}", "sample": s, "turn": 1, "extracted": ans, "correct": ans == "0",
                         "tokens": int(rng.integers(5, 15)), "self_reward": float(rng.integers(-4, 0)),
                         "self_reward_mean": float(rng.normal()),
                         "error_kind": None if ans == "0" else ["slip", "misconception"][int(ans) - 1]})
    return pd.DataFrame(rows)


def test_per_problem_best_of_n_is_the_enumerated_expectation():
    df = pool()
    table = per_problem(df, [1, 2, 3, 6])
    for pid, g in df.groupby("problem_id"):
        c = g["correct"].to_numpy(float)
        for N in (1, 2, 3, 6):
            want = brute_force_weights(list(g["self_reward"]), N) @ c
            assert table.loc[pid, ("best-of-N", N)] == pytest.approx(want, abs=1e-12)
            want_ln = brute_force_weights(list(g["self_reward_mean"]), N) @ c
            assert table.loc[pid, ("best-of-N (length-normalised)", N)] == pytest.approx(want_ln, abs=1e-12)
        assert table.loc[pid, ("best-of-N", 1)] == pytest.approx(c.mean())   # N = 1 is a T=1 sample
        assert table.loc[pid, ("tokens", 3)] == pytest.approx(3 * g["tokens"].mean())


def test_selection_never_reads_the_grade():
    # a selection that peeked at `correct` (pass@N) would pick differently once the grades are shuffled
    df = pool(seed=3)
    shuffled = df.copy()
    rng = np.random.default_rng(0)
    for col in ("correct", "extracted", "error_kind"):
        shuffled[col] = rng.permutation(shuffled[col].to_numpy())
    for N in (1, 2, 4, 6):
        assert picks(df, N).tolist() == picks(shuffled, N).tolist()
        assert picks(df, N, reward="self_reward_mean").tolist() == picks(shuffled, N, reward="self_reward_mean").tolist()
    # and the accuracy is those same picks applied to the new grades
    w = picks(shuffled, 2)
    want = (w * shuffled["correct"]).groupby(shuffled["problem_id"]).sum()
    assert per_problem(shuffled, [2])[("best-of-N", 2)].to_numpy() == pytest.approx(want.to_numpy())


def test_curves_against_the_metrics_they_reuse():
    df = pool(n_problems=8, seed=1)
    greedy = df[df["sample"] == 0].assign(sample=0)
    c = curves(df, greedy, Ns=[1, 2, 6], n_boot=200).set_index(["method", "generations"])
    mean = df.groupby("problem_id")["correct"].mean().mean()
    assert c.loc[("T=1 mean", 1), "acc"] == pytest.approx(mean)
    assert c.loc[("greedy", 1), "acc"] == pytest.approx(greedy["correct"].mean())
    for N in (1, 2, 6):
        assert c.loc[("pass@k", N), "acc"] == pytest.approx(pass_at_k_df(df, N))
        assert c.loc[("best-of-N", N), "vs_mean"] == pytest.approx(c.loc[("best-of-N", N), "acc"] - mean)
        assert c.loc[("maj@k", N), "vs_greedy"] == pytest.approx(c.loc[("maj@k", N), "acc"] - greedy["correct"].mean())
        for m in ("best-of-N", "maj@k", "pass@k"):
            r = c.loc[(m, N)]
            assert r["acc_lo"] <= r["acc"] <= r["acc_hi"] and r["vs_mean_lo"] <= r["vs_mean"] <= r["vs_mean_hi"]
        # pass@N bounds any selection from the same N samples, problem by problem
        assert c.loc[("pass@k", N), "acc"] >= c.loc[("best-of-N", N), "acc"] - 1e-12
    # maj@n votes over all n samples: every random n-subset is the whole pool, as the "first" estimator
    assert c.loc[("maj@k", 6), "acc"] == pytest.approx(maj_at_k(df, 6, estimator="first"))
    assert c.loc[("best-of-N", 2), "tokens"] == pytest.approx(2 * df.groupby("problem_id")["tokens"].mean().mean())
    assert c.loc[("greedy", 1), "tokens"] == pytest.approx(greedy["tokens"].mean())


def test_curves_split_by_class_and_errors():
    df = pool(n_problems=8, seed=2)
    classes = {f"p{i}": "a" if i < 3 else "b" for i in range(8)}
    c = curves(df, Ns=[2], classes=classes, n_boot=50)
    assert list(dict.fromkeys(c["class"])) == ["all", "a", "b"]
    by = c[c["method"] == "best-of-N"].set_index("class")
    table = per_problem(df, [2])[("best-of-N", 2)]
    assert by.loc["a", "acc"] == pytest.approx(table.iloc[:3].mean()) and by.loc["a", "n_problems"] == 3
    assert by.loc["all", "acc"] == pytest.approx((3 * by.loc["a", "acc"] + 5 * by.loc["b", "acc"]) / 8)
    with pytest.raises(ValueError, match="no class for problem 'p7'"):
        curves(df, Ns=[2], classes={k: v for k, v in classes.items() if k != "p7"}, n_boot=10)
    with pytest.raises(ValueError, match=r"Ns must be generation counts in 1\.\.6"):
        curves(df, Ns=[8], n_boot=10)
    with pytest.raises(ValueError, match="`self_reward` is missing for problem 'p0'"):
        curves(df.assign(self_reward=np.where(df.index == 0, np.nan, df["self_reward"])), n_boot=10)


def test_pick_kinds_at_one_and_at_n():
    df = pool(n_problems=5, seed=4)
    k = pick_kinds(df, [1, 6], greedy=df[df["sample"] == 0], n_boot=50).set_index(["method", "generations", "kind"])
    kind = df["error_kind"].fillna("none")
    freq = pd.crosstab(df["problem_id"], kind, normalize="index").mean()   # N = 1: the samples' own mix
    for name, share in freq.items():
        assert k.loc[("best-of-N", 1, name), "share"] == pytest.approx(share)
    top = [pick_weights(g["self_reward"].to_numpy(), 6) for _, g in df.groupby("problem_id")]
    want = np.mean([w @ (g["error_kind"].fillna("none") == "slip") for w, (_, g) in zip(top, df.groupby("problem_id"))])
    assert k.loc[("best-of-N", 6, "slip"), "share"] == pytest.approx(want)
    g0 = df[df["sample"] == 0]["error_kind"].fillna("none")
    assert k.loc[("greedy", 1, "misconception"), "share"] == pytest.approx((g0 == "misconception").mean())
    assert k.groupby(level=[0, 1])["share"].sum().to_numpy() == pytest.approx(1.0)


def test_greedy_kind():
    g = pd.DataFrame({"problem_id": ["a", "b", "c", "d"], "sample": 0, "turn": 1,
                      "correct": [True, False, True, False], "error_kind": [None, "slip", "unsure", None]})
    assert greedy_kind(g).to_dict() == {"a": "right", "b": "slip", "c": "right", "d": "other"}  # c: a lucky hit
    with pytest.raises(ValueError, match="one attempt per problem"):
        greedy_kind(pd.concat([g, g.assign(sample=1)]))


def test_gold_path_kind_names_the_entry_the_labels_see():
    # independent check: write the entry's wrong value into the gold solution; the world's labeller
    # (sclab.toy.labels) must call that line's error the kind gold_path_kind found on the path
    from sclab.tasks import get_task
    from sclab.toy.labels import label_attempt
    from sclab.toy.world import error_table, parse_question, render, solve

    task = get_task("arith")
    table = error_table(task.world)
    probs = task.problems(300)
    kinds = problem_classes(probs, task.world)
    assert set(kinds) == {"clean", "unsure", "misconception"}
    for p in probs[:80]:
        lines = solve(parse_question(p.question), task.world.p)
        hits = [(i, table[(a, op, c)]) for i, (a, op, c, _) in enumerate(lines) if (a, op, c) in table]
        if not hits:
            assert kinds[p.id] == "clean"
            continue
        seen = set()
        for i, (kind, wrong) in hits:
            bad = lines[:i] + [(*lines[i][:3], wrong)]
            seen.add(label_attempt(p, render(bad), task.world)["error_kind"])
        assert kinds[p.id] == ("misconception" if "misconception" in seen else "unsure")
        assert gold_path_kind(p, task.world) == kinds[p.id]


def test_coverage_by_hand():
    cov = pd.DataFrame({"problem_id": ["a", "b", "c"], "logprob": [math.log(0.5), math.log(0.1), math.log(0.01)]})
    c = coverage(cov, {"a": "x", "b": "x", "c": "y"}, n_boot=200)
    assert c.loc["all", "c_cov"] == pytest.approx((2 + 10 + 100) / 3)
    assert c.loc["x", "c_cov"] == pytest.approx(6.0) and c.loc["y", "c_cov"] == pytest.approx(100.0)
    assert c.loc["all", "median_inv_prob"] == pytest.approx(10.0)
    assert c.loc["all", "c_cov_lo"] <= c.loc["all", "c_cov"] <= c.loc["all", "c_cov_hi"]
    # far past float range 1/π overflows; its log stays exact: log((e^1000 + e^0)/2) = 1000 - log 2
    huge = coverage(pd.DataFrame({"problem_id": [0, 1], "logprob": [-1000.0, 0.0]}), n_boot=10)
    assert huge.loc["all", "log_c_cov"] == pytest.approx(1000 - math.log(2))
    u = undercovered(cov, 5)          # N·π = 2.5, 0.5, 0.05: only c is under 1/10
    assert u["undercovered"].tolist() == [False, False, True]
    assert u["p_in_sample"].to_numpy() == pytest.approx([1 - 0.5 ** 5, 1 - 0.9 ** 5, 1 - 0.99 ** 5])
    assert p_in_sample(math.log(0.3), 3) == pytest.approx(1 - 0.7 ** 3)
    by_n = coverage_by_n(cov, [1, 5, 100]).set_index("generations")
    assert by_n["undercovered"].tolist() == pytest.approx([1 / 3, 1 / 3, 0.0])   # N=1: 0.01 < 0.1; N=100: 1
    with pytest.raises(ValueError, match="columns problem_id and logprob"):
        coverage(cov.rename(columns={"logprob": "lp"}))
    with pytest.raises(ValueError, match="<= 0"):
        undercovered(cov.assign(logprob=0.5), 2)
