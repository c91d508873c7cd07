"""sclab.critique's model-free parts and the calibration helpers it reads: Row validation; the value
head's training loop learning a token rule on a fake causal backbone (and predict independent of
batching, order and right padding); within-bucket and per-kind AUROC and signal_table against
brute-force pair counts and a hand-written problem bootstrap; Platt scaling, selective answering and
the reliability diagram by hand; first_flag; the toy world's exact V* and gold continuations; and
Kadavath's P(True) conversations in both dialects."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from sclab.critique import (Row, ValueModel, auroc_difference, first_flag, kind_auroc, predict, ptrue_conversation,
                            signal_table, train_value, verdict_ids, within_auroc)
from sclab.critique.ptrue import verdict_tokens
from sclab.metrics.calibration import apply_platt, ece, platt, reliability, selective_curve
from sclab.tasks import get_task
from sclab.tasks.base import Problem
from sclab.toy.values import gold_continuation, v_star
from sclab.toy.world import ArithTask, apply, parse_lines, render

pytestmark = pytest.mark.unit
TOY = ArithTask()
P = TOY.world.p


# ---------------------------------------------------------------- brute-force references

def pair_auroc(scores, labels):
    """P(score of a right item > score of a wrong one), ties counting half, over every pair."""
    right = [s for s, y in zip(scores, labels) if y]
    wrong = [s for s, y in zip(scores, labels) if not y]
    if not right or not wrong:
        return float("nan")
    return sum((r > w) + 0.5 * (r == w) for r in right for w in wrong) / (len(right) * len(wrong))


def pair_counts(scores, labels):
    """(wins + ties/2, pairs) of right-over-wrong pairs."""
    right = [s for s, y in zip(scores, labels) if y]
    wrong = [s for s, y in zip(scores, labels) if not y]
    return sum((r > w) + 0.5 * (r == w) for r in right for w in wrong), len(right) * len(wrong)


# ---------------------------------------------------------------- Row

@pytest.mark.parametrize("kw, match", [
    (dict(ids=[], positions=[], targets=[]), "empty"),
    (dict(ids=[1, 2, 3], positions=[3], targets=[]), "positions"),
    (dict(ids=[1, 2, 3], positions=[-1], targets=[]), "positions"),
    (dict(ids=[1, 2, 3], positions=[0, 2], targets=[1.0]), "1 targets for 2 positions"),
    (dict(ids=[1, 2, 3], positions=[0], targets=[1.5]), r"\[0, 1\]"),
    (dict(ids=[1, 2, 3], positions=[0], targets=[-0.1]), r"\[0, 1\]"),
    (dict(ids=[1, 2, 3], positions=[0], targets=[float("nan")]), r"\[0, 1\]"),
])
def test_row_rejects_bad_positions_and_targets(kw, match):
    with pytest.raises(ValueError, match=match):
        Row(**kw)


def test_row_accepts_soft_targets_and_prediction_only_rows():
    assert Row([5, 6, 7], [0, 2], [0.0, 0.25]).targets == [0.0, 0.25]
    assert Row([5, 6, 7], [2], []).targets == []          # to predict only


# ---------------------------------------------------------------- the training loop on a fake backbone

H = 16        # the fake backbone's width


class CausalBag(torch.nn.Module):
    """A tiny causal 'decoder': h_t = emb(x_t) + mean(emb(x_0..x_t)), so the output at t depends
    only on tokens up to t (right padding leaves it alone, left padding would not)."""

    def __init__(self, vocab=16, hidden=H, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = torch.nn.Embedding(vocab, hidden)

    def forward(self, input_ids, attention_mask):
        e = self.emb(input_ids)
        run = e.cumsum(1) / torch.arange(1, e.shape[1] + 1, dtype=e.dtype)[None, :, None]
        return SimpleNamespace(last_hidden_state=e + run)


MARK = 7      # the token the rule looks for


def rule_rows(n, seed, vocab=16, with_targets=True):
    """Rows of random length over tokens 1..vocab-1, read at random positions, target 1 iff the
    token there is MARK."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        ids = [int(t) for t in rng.integers(1, vocab, int(rng.integers(3, 12)))]
        ids[int(rng.integers(len(ids)))] = MARK                     # every row holds a positive somewhere
        pos = sorted({int(x) for x in rng.integers(0, len(ids), 3)} | {ids.index(MARK)})
        rows.append(Row(ids, pos, [float(ids[p] == MARK) for p in pos] if with_targets else []))
    return rows


def test_value_model_starts_at_one_half():
    vm = ValueModel(CausalBag(), H)
    out = predict(vm, rule_rows(5, seed=1))
    assert all(np.allclose(o, 0.5) for o in out)


def test_train_value_learns_a_token_rule():
    """After training, positions holding MARK read > 0.8 and the others < 0.2, on rows never
    trained on; the loss falls and one loss comes back per step."""
    vm = ValueModel(CausalBag(), H)
    losses = train_value(vm, rule_rows(64, seed=0), steps=150, lr=5e-2, batch_size=16, progress=False)
    assert len(losses) == 150
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    test = rule_rows(40, seed=99)
    out = predict(vm, test)
    pos = np.concatenate([o[np.array(r.targets) == 1] for o, r in zip(out, test)])
    neg = np.concatenate([o[np.array(r.targets) == 0] for o, r in zip(out, test)])
    assert len(pos) and len(neg)
    assert pos.min() > 0.8 and neg.max() < 0.2
    assert not vm.training        # left in eval mode


def test_train_value_default_steps_follow_epochs():
    """steps=None: round(epochs * rows / batch_size) optimiser steps; rows without positions are
    dropped before counting."""
    rows = rule_rows(10, seed=2) + [Row([1, 2], [], [])]
    assert len(train_value(ValueModel(CausalBag(), H), rows, epochs=2, batch_size=4, progress=False)) == 5


def test_train_value_is_seeded():
    a = train_value(ValueModel(CausalBag(), H), rule_rows(20, seed=3), steps=5, batch_size=4, seed=1, progress=False)
    b = train_value(ValueModel(CausalBag(), H), rule_rows(20, seed=3), steps=5, batch_size=4, seed=1, progress=False)
    assert a == b


def test_predict_is_independent_of_batching_order_and_padding():
    """Rows of mixed lengths, predicted in one batch, one by one, and shuffled: the same
    probabilities per row (the batches right-pad, and the backbone is causal); and each row alone,
    unpadded, through the module itself gives them too."""
    vm = ValueModel(CausalBag(), H)
    train_value(vm, rule_rows(32, seed=4), steps=20, lr=5e-2, batch_size=8, progress=False)
    rows = rule_rows(23, seed=5, with_targets=False)
    full = predict(vm, rows, batch_size=64)
    ones = predict(vm, rows, batch_size=1)
    perm = np.random.default_rng(0).permutation(len(rows))
    shuffled = predict(vm, [rows[i] for i in perm], batch_size=5)
    with torch.no_grad():
        alone = [torch.sigmoid(vm(torch.tensor([r.ids]), torch.ones(1, len(r.ids), dtype=torch.long)))[0, r.positions]
                 .numpy() for r in rows]
    assert len({len(r.ids) for r in rows}) > 3       # padding really happens
    for j in range(len(rows)):
        assert len(full[j]) == len(rows[j].positions)
        np.testing.assert_allclose(full[j], ones[j], atol=1e-6)
        np.testing.assert_allclose(full[j], alone[j], atol=1e-6)
    for k, j in enumerate(perm):
        np.testing.assert_allclose(shuffled[k], full[j], atol=1e-6)
    assert not np.allclose(np.concatenate(full), 0.5)   # trained: the check is not on constant outputs


def test_predict_restores_training_mode():
    vm = ValueModel(CausalBag(), H)
    vm.train()
    predict(vm, rule_rows(3, seed=6))
    assert vm.training


@pytest.mark.parametrize("kw", [dict(steps=0), dict(lr=0.0), dict(lr=-1e-3), dict(epochs=0), dict(batch_size=0)])
def test_train_value_rejects_bad_arguments(kw):
    with pytest.raises(ValueError, match="train_value"):
        train_value(ValueModel(CausalBag(), H), rule_rows(4, seed=7), progress=False, **kw)


def test_train_value_needs_labelled_rows():
    vm = ValueModel(CausalBag(), H)
    with pytest.raises(ValueError, match="target"):
        train_value(vm, rule_rows(4, seed=8, with_targets=False), progress=False)
    with pytest.raises(ValueError, match="target"):
        train_value(vm, [Row([1, 2, 3], [], [])], progress=False)   # nothing to read at all
    with pytest.raises(ValueError, match="target"):
        train_value(vm, [], progress=False)


# ---------------------------------------------------------------- AUROC within buckets and by kind

def judged_frame(seed, n_problems=30, per_problem=4):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_problems):
        n = int(rng.integers(2, 6))
        for s in range(per_problem):
            correct = bool(rng.random() < 1.2 - n / 5)
            kind = None if correct else str(rng.choice(["slip", "unsure", "misconception"]))
            # a signal that sees difficulty and a little of correctness; rounded to make ties
            sig = round(float(np.clip(1 - n / 6 + 0.2 * correct + rng.normal(0, 0.15), 0, 1)), 1)
            rows.append({"problem_id": f"p{i}", "sample": s, "correct": correct, "error_kind": kind, "n": n,
                         "s": sig, "raw": float(rng.normal(correct, 1.0))})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(4))
def test_within_auroc_is_the_pooled_within_bucket_pair_count(seed):
    df = judged_frame(seed)
    wins = pairs = 0.0
    for n in sorted(df["n"].unique()):
        g = df[df["n"] == n]
        w, p = pair_counts(g["s"].tolist(), g["correct"].tolist())
        wins, pairs = wins + w, pairs + p
    assert pairs > 0
    assert within_auroc(df, "s", "n") == pytest.approx(wins / pairs, abs=1e-12)


def test_within_auroc_drops_the_between_bucket_pairs():
    """A signal that only knows the bucket: pooled AUROC is high, within-bucket AUROC 1/2 (ties)."""
    df = pd.DataFrame({"correct": [1, 0, 1, 1, 0, 0], "n": [1, 1, 1, 2, 2, 2]})
    df["s"] = np.where(df["n"] == 1, 0.9, 0.1)
    assert pair_auroc(df["s"].tolist(), df["correct"].tolist()) > 0.6
    assert within_auroc(df, "s", "n") == 0.5
    single_class = pd.DataFrame({"correct": [1, 0], "n": [1, 2], "s": [0.3, 0.7]})
    assert np.isnan(within_auroc(single_class, "s", "n"))


@pytest.mark.parametrize("kind", ["slip", "unsure", "misconception"])
def test_kind_auroc_pairs_right_rows_with_wrong_rows_of_that_kind(kind):
    df = judged_frame(11)
    right = df[df["correct"]]
    wrong = df[~df["correct"] & (df["error_kind"] == kind)]
    assert len(right) and len(wrong)
    expected = pair_auroc(right["s"].tolist() + wrong["s"].tolist(), [1] * len(right) + [0] * len(wrong))
    assert kind_auroc(df, "s", kind) == pytest.approx(expected, abs=1e-12)


def test_kind_auroc_by_hand():
    df = pd.DataFrame({"correct": [1, 1, 0, 0, 0], "error_kind": [None, None, "slip", "slip", "misconception"],
                       "s": [0.8, 0.4, 0.5, 0.1, 0.9]})
    assert kind_auroc(df, "s", "slip") == 0.75           # (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1): 3 of 4
    assert kind_auroc(df, "s", "misconception") == 0.0   # the misconception outscores both right rows


# ---------------------------------------------------------------- signal_table

def brute_brier(p, y):
    return sum((a - b) ** 2 for a, b in zip(p, y)) / len(p)


def test_signal_table_point_values_and_intervals():
    df = judged_frame(21)
    tab = signal_table(df, {"sig": "s", "raw": "raw"}, prob=("sig",), kinds=("slip",), bucket="n", n_boot=200, seed=3)
    assert list(tab["signal"]) == ["sig", "raw"]
    sig, raw = tab.set_index("signal").loc["sig"], tab.set_index("signal").loc["raw"]
    y = df["correct"].astype(float).tolist()
    assert sig["auroc"] == pytest.approx(pair_auroc(df["s"].tolist(), y), abs=1e-12)
    assert raw["auroc"] == pytest.approx(pair_auroc(df["raw"].tolist(), y), abs=1e-12)
    assert sig["brier"] == pytest.approx(brute_brier(df["s"].tolist(), y), abs=1e-12)
    assert sig["ece"] == pytest.approx(ece(df["s"], y), abs=1e-12)
    assert sig["auroc_slip"] == pytest.approx(kind_auroc(df, "s", "slip"), abs=1e-12)
    assert sig["auroc_within"] == pytest.approx(within_auroc(df, "s", "n"), abs=1e-12)
    # by kind: ECE over the right rows and the slipped ones only, and the mean confidence in the slipped ones
    slip = (df["correct"] == 0) & (df["error_kind"] == "slip")
    keep = (df["correct"] == 1) | slip
    assert sig["ece_slip"] == pytest.approx(ece(df["s"][keep], df["correct"][keep].astype(float)), abs=1e-12)
    assert sig["conf_wrong_slip"] == pytest.approx(df["s"][slip].mean(), abs=1e-12)
    assert pd.isna(raw["brier"]) and pd.isna(raw["ece"]) and "ece_slip" not in raw.dropna()   # not a probability
    for name in ("sig", "raw"):
        row = tab.set_index("signal").loc[name]
        for m in ("auroc", "auroc_slip", "auroc_within") + (("brier", "rms", "ece") if name == "sig" else ()):
            assert row[f"{m}_lo"] <= row[f"{m}_hi"], (name, m)
        for m in ("auroc", "auroc_within") + (("brier",) if name == "sig" else ()):
            # roughly unbiased metrics: the point lies inside its percentile interval (ECE, biased
            # upward under resampling, need not)
            assert row[f"{m}_lo"] <= row[m] <= row[f"{m}_hi"], (name, m)


def test_signal_table_resamples_whole_problems():
    """The AUROC interval equals one computed here from the documented draws: default_rng(seed)
    integers over the sorted problem ids, every row of a drawn problem taken, a percentile interval."""
    df = judged_frame(5, n_problems=12)
    tab = signal_table(df, {"sig": "s"}, n_boot=50, alpha=0.1, seed=9).iloc[0]
    ids = sorted(df["problem_id"].unique())
    draws = np.random.default_rng(9).integers(0, len(ids), size=(50, len(ids)))
    vals = []
    for d in draws:
        sub = pd.concat([df[df["problem_id"] == ids[i]] for i in d])
        vals.append(pair_auroc(sub["s"].tolist(), sub["correct"].tolist()))
    lo, hi = np.nanquantile(vals, [0.05, 0.95])
    assert tab["auroc_lo"] == pytest.approx(lo, abs=1e-12) and tab["auroc_hi"] == pytest.approx(hi, abs=1e-12)


def test_auroc_difference_is_paired_over_the_same_resamples():
    """The difference's interval comes from both signals on each of signal_table's problem resamples
    (recomputed here from the documented draws), so it is not the gap between two separate intervals."""
    df = judged_frame(6, n_problems=15)
    got = auroc_difference(df, "s", "raw", n_boot=60, alpha=0.1, seed=2)
    ids = sorted(df["problem_id"].unique())
    vals = []
    for d in np.random.default_rng(2).integers(0, len(ids), size=(60, len(ids))):
        sub = pd.concat([df[df["problem_id"] == ids[i]] for i in d])
        vals.append(pair_auroc(sub["s"].tolist(), sub["correct"].tolist()) - pair_auroc(sub["raw"].tolist(), sub["correct"].tolist()))
    lo, hi = np.nanquantile(vals, [0.05, 0.95])
    y = df["correct"].tolist()
    assert got["diff"] == pytest.approx(pair_auroc(df["s"].tolist(), y) - pair_auroc(df["raw"].tolist(), y), abs=1e-12)
    assert got["diff_lo"] == pytest.approx(lo, abs=1e-12) and got["diff_hi"] == pytest.approx(hi, abs=1e-12)
    with pytest.raises(ValueError, match="nope"):
        auroc_difference(df, "s", "nope")


def test_signal_table_is_seeded():
    df = judged_frame(8)
    a = signal_table(df, {"sig": "s"}, n_boot=100, seed=4)
    b = signal_table(df, {"sig": "s"}, n_boot=100, seed=4)
    c = signal_table(df, {"sig": "s"}, n_boot=100, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a[["auroc_lo", "auroc_hi", "brier_lo", "brier_hi"]].to_numpy(),
                           c[["auroc_lo", "auroc_hi", "brier_lo", "brier_hi"]].to_numpy())


def test_signal_table_names_missing_columns():
    df = judged_frame(1)
    with pytest.raises(ValueError, match="'nope'"):
        signal_table(df, {"sig": "nope"}, n_boot=10)
    with pytest.raises(ValueError, match="'difficulty'"):
        signal_table(df, {"sig": "s"}, bucket="difficulty", n_boot=10)
    with pytest.raises(ValueError, match="'problem_id'"):
        signal_table(df.drop(columns="problem_id"), {"sig": "s"}, n_boot=10)
    with pytest.raises(ValueError, match="'ok'"):
        signal_table(df, {"sig": "s"}, label="ok", n_boot=10)


# ---------------------------------------------------------------- Platt, selective answering, reliability

@pytest.mark.parametrize("a, b", [(1.5, -0.5), (-0.8, 1.0), (0.3, 2.0)])
def test_platt_recovers_a_logistic_model(a, b):
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, 20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-(a * x + b)))
    fa, fb = platt(x, y)
    assert fa == pytest.approx(a, abs=0.1) and fb == pytest.approx(b, abs=0.1)


def test_apply_platt_is_monotone_and_finite_on_separable_data():
    x = np.linspace(-5, 5, 101)
    up = apply_platt(x, (2.0, 0.3))
    assert np.all(np.diff(up) > 0) and np.all((up > 0) & (up < 1))
    assert np.all(np.diff(apply_platt(x, (-2.0, 0.3))) < 0)
    ab = platt([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1])          # separable: the ridge keeps it finite
    assert np.isfinite(ab).all() and ab[0] > 0
    with pytest.raises(ValueError, match="platt"):
        platt([0.5], [1])


def test_selective_curve_by_hand():
    conf = [0.9, 0.1, 0.8, 0.2, 0.5]
    correct = [1, 0, 0, 1, 1]
    # by confidence: 0.9 (right), 0.8 (wrong), 0.5 (right), 0.2 (right), 0.1 (wrong)
    running = [1 / 1, 1 / 2, 2 / 3, 3 / 4, 3 / 5]
    out = selective_curve(conf, correct, [0.2, 0.4, 0.6, 0.8, 1.0])
    assert out["coverage"] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert out["accuracy"] == pytest.approx(running)
    assert out["aurc_acc"] == pytest.approx(np.mean(running))


def test_selective_curve_ties_keep_the_given_order():
    out = selective_curve([0.5] * 4, [0, 1, 1, 1], [0.25, 0.5, 1.0])
    assert out["accuracy"] == pytest.approx([0.0, 0.5, 0.75])


def test_selective_curve_full_coverage_and_a_perfect_signal():
    rng = np.random.default_rng(3)
    correct = (rng.random(200) < 0.3).astype(int)
    base = correct.mean()
    noisy = selective_curve(rng.random(200), correct)
    assert noisy["coverage"][-1] == 1.0 and noisy["accuracy"][-1] == pytest.approx(base)
    perfect = np.where(correct == 1, rng.uniform(0.6, 1.0, 200), rng.uniform(0.0, 0.4, 200))
    cov = [c for c in np.linspace(0.05, 1.0, 20) if c <= base]
    assert cov
    assert selective_curve(perfect, correct, cov)["accuracy"] == pytest.approx([1.0] * len(cov))
    # a raw score (a log-probability, not in [0, 1]) ranks as its monotone transform does
    raw = np.log(perfect)
    assert selective_curve(raw, correct)["accuracy"] == selective_curve(perfect, correct)["accuracy"]


def test_reliability_agrees_with_ece_and_by_hand():
    rng = np.random.default_rng(1)
    conf = rng.random(300)
    correct = rng.random(300) < conf ** 2
    rel = reliability(conf, correct)
    assert rel["weight"].sum() == pytest.approx(1.0)
    assert np.sum(rel["weight"] * np.abs(rel["accuracy"] - rel["confidence"])) == pytest.approx(ece(conf, correct))
    # by hand: bins [0.2, 0.3) holds 0.2 and 0.25, [0.9, 1.0] holds 0.9 and 1.0
    hand = reliability([0.2, 0.25, 0.9, 1.0], [0, 1, 1, 1])
    assert hand["weight"].tolist() == [0.5, 0.5]
    assert hand["accuracy"].tolist() == [0.5, 1.0]
    assert hand["confidence"] == pytest.approx([0.225, 0.95])


# ---------------------------------------------------------------- first_flag

def test_first_flag():
    assert first_flag([0.9, 0.2, 0.1]) == 1
    assert first_flag([0.1]) == 0
    assert first_flag([0.9, 0.6]) is None
    assert first_flag([]) is None
    assert first_flag([0.5, 0.49]) == 1               # strictly below the threshold
    assert first_flag(np.array([0.9, 0.8, 0.7]), threshold=0.75) == 2


# ---------------------------------------------------------------- V* and gold continuations on the toy world

PROBS = TOY.problems(12, seed=4)


def slipped(problem, k, lucky=False):
    """The gold solution with line k's result off by one, later lines recomputed from it (a
    propagated slip); with `lucky`, the last line and the answer forced back to the gold value."""
    lines = parse_lines(problem.meta["solution"])
    a, op, c, r = lines[k]
    new = lines[:k] + [(a, op, c, (r + 1) % P)]
    for _, op2, c2, _ in lines[k + 1:]:
        new.append((new[-1][3], op2, c2, apply(op2, new[-1][3], c2, P)))
    if lucky:
        a, op, c, _ = new[-1]
        new[-1] = (a, op, c, int(problem.gold))
    return render(new)


@pytest.mark.parametrize("problem", PROBS[:6], ids=lambda p: p.id)
def test_v_star_of_the_gold_solution_is_all_ones(problem):
    n = len(parse_lines(problem.meta["solution"]))
    assert n == 2 * problem.meta["n"]
    assert v_star(problem, problem.meta["solution"], TOY.world) == [1.0] * (n + 1)


@pytest.mark.parametrize("problem", PROBS[:6], ids=lambda p: p.id)
def test_v_star_drops_to_zero_at_the_first_wrong_line(problem):
    n = len(parse_lines(problem.meta["solution"]))
    for k in range(n):
        text = slipped(problem, k)
        assert TOY.grade(problem, text).correct is False   # a bijective chain: the slip reaches the answer
        assert v_star(problem, text, TOY.world) == [1.0] * k + [0.0] * (n - k) + [0.0]
    # a lucky hit: lines wrong from k on, the answer right anyway; the end value is the outcome
    lucky = slipped(problem, 0, lucky=True)
    assert TOY.grade(problem, lucky).correct
    assert v_star(problem, lucky, TOY.world) == [0.0] * n + [1.0]


def test_v_star_n_steps_and_malformed_text():
    p = PROBS[0]
    assert v_star(p, p.meta["solution"], TOY.world, n_steps=2) == [1.0, 1.0, 1.0]
    assert v_star(p, "garbage", TOY.world) == [0.0]


@pytest.mark.parametrize("problem", PROBS, ids=lambda p: p.id)
def test_gold_continuation_completes_the_gold_prefix(problem):
    """The first j gold lines as the model writes them ("a opc = r ;", space-joined), a space,
    then gold_continuation(p, j): the gold solution exactly, for every j."""
    sol = problem.meta["solution"]
    lines = parse_lines(sol)
    for j in range(len(lines) + 1):
        prefix = " ".join(f"{a} {op}{c} = {r} ;" for a, op, c, r in lines[:j])
        cont = gold_continuation(problem, j)
        assert (prefix + " " + cont if prefix else cont) == sol, j
    assert gold_continuation(problem, len(lines)) == f"> {problem.gold}"
    for bad in (-1, len(lines) + 1):
        with pytest.raises(ValueError, match="gold_continuation"):
            gold_continuation(problem, bad)


# ---------------------------------------------------------------- P(True) conversations

def test_ptrue_chat_uses_kadavaths_template():
    task = get_task("gsm8k")          # reads no data until problems() is called
    assert task.dialect == "chat"
    p = Problem(id="q/0", question="What is 17 + 25?", gold="42")
    conv = ptrue_conversation(task, p, "The answer is 42.")
    assert conv == [{"role": "user", "content":
                     "Question: What is 17 + 25?\nProposed Answer: The answer is 42.\nIs the proposed answer:\n"
                     " (A) True\n (B) False\nThe proposed answer is:"}]


def test_ptrue_chat_brainstorm_lists_the_samples_before_the_answer():
    task = get_task("gsm8k")
    p = Problem(id="q/0", question="What is 17 + 25?", gold="42")
    text = ptrue_conversation(task, p, "42", brainstorm=["41", "42", "43"])[0]["content"]
    assert text.startswith("Question: What is 17 + 25?\nHere are some brainstormed ideas:\n")
    ideas, rest = text.split("Here are some brainstormed ideas:\n")[1].split("\nPossible Answer: ")
    assert ideas == "1. 41\n2. 42\n3. 43"
    assert rest == "42\nIs the possible answer:\n (A) True\n (B) False\nThe possible answer is:"


def test_ptrue_toy_dialect_turns():
    """Toy: the question, each brainstorm sample as an earlier attempt followed by `again <q>`, the
    proposed answer, and last the user's `confirm <q>` (the verdict is the next assistant word)."""
    p = PROBS[0]
    q = p.question
    assert ptrue_conversation(TOY, p, "ANSWER") == [
        {"role": "user", "content": TOY.prompt(p)}, {"role": "assistant", "content": "ANSWER"},
        {"role": "user", "content": f"confirm {q}"}]
    assert ptrue_conversation(TOY, p, "ANSWER", brainstorm=["B1", "B2"]) == [
        {"role": "user", "content": TOY.prompt(p)},
        {"role": "assistant", "content": "B1"}, {"role": "user", "content": f"again {q}"},
        {"role": "assistant", "content": "B2"}, {"role": "user", "content": f"again {q}"},
        {"role": "assistant", "content": "ANSWER"}, {"role": "user", "content": f"confirm {q}"}]


def test_verdict_ids_rejects_an_unknown_dialect_and_reads_past_a_shared_prefix():
    with pytest.raises(ValueError, match="dialect"):
        verdict_ids(None, "klingon")

    def split(text, add_special_tokens=False):   # a tokenizer that splits "(A)" into "(" + "A" + ")"
        return {"input_ids": [ord(c) for c in text]}
    assert verdict_tokens(split, "chat") == ([ord("(")], ord("A"), ord("B"))
    assert verdict_ids(split, "chat") == (ord("A"), ord("B"))

    def blind(text, add_special_tokens=False):   # one token for both options: nothing tells them apart
        return {"input_ids": [9]}
    with pytest.raises(ValueError, match="same tokens"):
        verdict_ids(blind, "chat")

