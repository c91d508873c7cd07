"""sclab.sharpening.srgen's model-free parts: the trigger rule against a brute-force reading of its
definition, the δ optimisation on a random linear head (batched rows = separate runs, the loss falls),
the toy world's next-token roles against the world's own solutions, the trigger and accuracy tables
by hand, and bad parameters."""
import math
import statistics

import numpy as np
import pandas as pd
import pytest
import torch

from sclab.sharpening import (srgen_accuracy, srgen_generate, toy_next_token, trigger_positions, trigger_stats,
                              trigger_threshold)
from sclab.sharpening.srgen import _reflect
from sclab.tasks import get_task
from sclab.toy.world import parse_question, solve

pytestmark = pytest.mark.unit
TASK = get_task("arith")


def brute_force_triggers(ent, k, window, min_history, min_std, min_threshold, max_triggers):
    """The definition read literally: token t fires when at least min_history entropies precede it and
    H_t > max(mean + k·max(stdev, min_std), min_threshold) over the last `window` of them."""
    fired = []
    for t in range(len(ent)):
        if max_triggers is not None and len(fired) == max_triggers:
            break
        if t < min_history:
            continue
        w = ent[max(0, t - window):t]
        thr = max(statistics.mean(w) + k * max(statistics.stdev(w), min_std), min_threshold)
        if ent[t] > thr:
            fired.append(t)
    return fired


@pytest.mark.parametrize("seed", range(8))
def test_trigger_positions_equal_the_brute_force_definition(seed):
    rng = np.random.default_rng(seed)
    # mostly confident tokens with rare uncertain ones, as the toy's result tokens look
    ent = (rng.exponential(0.05, 80) + (rng.random(80) < 0.1) * rng.uniform(0.2, 1.5, 80)).tolist()
    for k, window, min_history, min_std, min_thr, cap in [(2.0, 10, None, 0.0, 0.0, None), (1.0, 5, 3, 0.0, 0.0, None),
                                                          (0.5, 20, 2, 0.1, 0.3, 4), (3.0, 4, 4, 0.0, 0.0, 1),
                                                          (0.0, 6, None, 0.0, 0.0, None)]:
        expected = brute_force_triggers(ent, k, window, window if min_history is None else min_history, min_std,
                                        min_thr, cap)
        got = trigger_positions(ent, k=k, window=window, min_history=min_history, min_std=min_std,
                                min_threshold=min_thr, max_triggers=cap)
        assert got == expected, (k, window, min_history, min_std, min_thr, cap)
    assert trigger_positions(ent, k=2.0, window=10)    # the cases above are not all empty


def test_thresholds_by_hand():
    assert trigger_threshold([0.0, 0.0, 0.0], k=2.0, window=3) == 0.0        # a flat window: any rise fires
    assert trigger_threshold([0.0, 0.0, 0.0], k=2.0, window=3, min_std=0.5) == 1.0
    assert trigger_threshold([0.0, 0.0, 0.0], k=2.0, window=3, min_threshold=1.8) == 1.8
    assert trigger_threshold([5.0, 1.0, 3.0], k=1.0, window=2) == pytest.approx(2 + math.sqrt(2))  # the last 2
    assert trigger_threshold([0.1] * 9, k=2.0, window=10) == math.inf        # the window not yet full
    assert trigger_threshold([0.1] * 9, k=2.0, window=10, min_history=9) == pytest.approx(0.1)
    assert trigger_threshold([0.0, 1.0], k=math.inf, window=2) == math.inf   # k = inf never fires, even at std 0
    assert trigger_positions([0.0] * 5 + [9.0], k=math.inf, window=2) == []
    assert trigger_positions([0.0] * 5 + [9.0] * 5, k=0.0, window=2, max_triggers=2) == [5, 6]


@pytest.mark.parametrize("kw, name", [
    ({"k": -1.0}, "k"), ({"k": float("nan")}, "k"), ({"window": 1}, "window"), ({"window": 2.5}, "window"),
    ({"min_history": 11}, "min_history"), ({"min_history": 1}, "min_history"), ({"min_std": -0.1}, "min_std"),
    ({"min_threshold": -1.0}, "min_threshold"), ({"max_triggers": -1}, "max_triggers"),
])
def test_bad_rule_parameters_name_themselves(kw, name):
    args = {"k": 2.0, "window": 10, **kw}
    with pytest.raises(ValueError, match=name):
        trigger_positions([0.1] * 20, **args)
    with pytest.raises(ValueError, match=name):   # generation checks before it touches a model
        srgen_generate(None, None, [[{"role": "user", "content": "1 ; +1 -1 ; 1 ?"}]], **args)


@pytest.mark.parametrize("kw, name", [
    ({"steps": -1}, "steps"), ({"lr": 0.0}, "lr"), ({"lam": 1.5}, "lam"), ({"ce": "prompt"}, "ce"),
    ({"temperature": -1.0}, "temperature"), ({"top_p": 0.0}, "top_p"), ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"n": 0}, "n"), ({"batch_size": 0}, "batch_size"),
])
def test_bad_generation_parameters_name_themselves(kw, name):
    with pytest.raises(ValueError, match=name):
        srgen_generate(None, None, [[{"role": "user", "content": "1 ; +1 -1 ; 1 ?"}]], **kw)
    with pytest.raises(ValueError, match="conversations"):
        srgen_generate(None, None, [])


def _head_and_context(rows=3, length=7, hidden=16, vocab=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hidden, generator=g))
    ctx = torch.randn(rows, length, hidden, generator=g)
    labels = torch.randint(0, vocab, (rows, length - 1), generator=g)
    labels[1, :3] = -100                     # row 1 counts only its last tokens
    return head, ctx, labels


def independent_loss(head, ctx, labels, delta, lam, temperature=1.0):
    """(1 − λ)·mean CE over the counted labels + λ·entropy of the last position, one row at a time."""
    with torch.no_grad():
        logits = head(ctx + delta)
    keep = labels != -100
    ce = torch.nn.functional.cross_entropy(logits[:-1][keep], labels[keep])
    p = torch.softmax(logits[-1] / temperature, -1)
    return float((1 - lam) * ce - lam * (p * p.log()).sum())


def test_reflect_batched_rows_equal_separate_runs_and_lower_the_loss():
    head, ctx, labels = _head_and_context()
    last, before, after, norm = _reflect(head, ctx, labels, steps=5, lr=0.05, lam=0.3, temperature=1.0)
    for r in range(3):
        l1, b1, a1, n1 = _reflect(head, ctx[r:r + 1], labels[r:r + 1], steps=5, lr=0.05, lam=0.3, temperature=1.0)
        assert torch.allclose(last[r], l1[0], atol=1e-5) and abs(float(after[r]) - float(a1[0])) < 1e-5
        assert float(before[r]) == pytest.approx(independent_loss(head, ctx[r], labels[r], 0.0, 0.3), abs=1e-5)
        assert float(after[r]) < float(before[r])
    assert torch.all(norm > 0) and head.weight.grad is None   # δ moved; the head collected no gradient
    # steps = 0: δ stays 0 and the logits are the model's own
    last0, b0, a0, n0 = _reflect(head, ctx, labels, steps=0, lr=0.05, lam=0.3, temperature=1.0)
    assert torch.allclose(last0, head(ctx[:, -1]), atol=1e-6) and torch.all(n0 == 0) and torch.equal(b0, a0)


def test_pure_entropy_reflection_sharpens_towards_the_mode():
    head, ctx, labels = _head_and_context(seed=3)
    p0 = torch.softmax(head(ctx[:, -1]), -1)
    last, *_ = _reflect(head, ctx, labels, steps=20, lr=0.1, lam=1.0, temperature=1.0)
    p1 = torch.softmax(last, -1)
    ent = lambda p: -(p * p.log()).sum(-1)
    assert torch.all(ent(p1) < ent(p0))
    assert torch.equal(p1.argmax(-1), p0.argmax(-1))          # λ = 1 only sharpens: the mode stays


def test_toy_next_token_walks_every_gold_solution():
    for prob in TASK.problems(20, seed=4):
        gold = prob.meta["solution"].split() + ["<eos>"]
        lines = solve(parse_question(prob.question), TASK.world.p)
        roles = []
        for j, tok in enumerate(gold):
            role, expected, entry = toy_next_token(prob, gold[:j], TASK.world)
            roles.append(role)
            assert expected == (tok if role != "eos" else None), (prob.question, j)
            if role == "result":   # the looked-up entry is the line's own (a, op, c)
                a, op, c, _ = lines[j // 5]
                assert entry == (a, op, c)
        assert roles == ["input", "op", "=", "result", ";"] * len(lines) + [">", "final", "eos"]
        assert toy_next_token(prob, gold[:-1] + ["x"], TASK.world) == ("off-format", None, None)  # past the end


def test_toy_next_token_follows_the_written_chain_and_flags_format_breaks():
    q = get_task("arith").problems(1)[0]
    first = q.meta["solution"].split()[:5]                 # a b = r ; with r replaced by a wrong value
    wrong = str((int(first[3]) + 1) % 13)
    prefix = first[:3] + [wrong, ";"]
    assert toy_next_token(q, prefix, TASK.world)[:2] == ("input", wrong)   # the next line reads the written value
    assert toy_next_token(q, first[:2] + ["+3"], TASK.world)[0] == "off-format"   # an op where "=" belongs
    assert toy_next_token(q, ["same"], TASK.world) == ("off-format", None, None)


def test_trigger_stats_by_hand():
    s = pd.DataFrame({
        "role": ["result"] * 5 + ["op"] * 3,
        "triggered":   [True, True, True, False, False, True, False, False],
        "plain_wrong": [True, True, False, True, False, False, None, False],
        "srgen_wrong": [False, True, True, True, False, False, None, False],
        "changed":     [True, False, True, False, False, False, False, False],
    })
    t = trigger_stats(s, by="role")
    r = t.loc["result"]
    assert (r.steps, r.triggers) == (5, 3)
    assert r.precision == pytest.approx(2 / 3) and r.recall == pytest.approx(2 / 3)
    assert r.fixed == pytest.approx(1 / 2) and r.broken == 1.0 and r.changed == pytest.approx(2 / 3)
    o = t.loc["op"]     # one undefined step: in steps, not in the rates
    assert (o.steps, o.triggers, o.precision, o.plain_wrong_rate) == (3, 1, 0.0, 0.0)
    assert math.isnan(o.recall) and math.isnan(o.fixed)
    assert t.loc["all", "triggers"] == 4 and t.loc["all", "precision"] == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="by"):
        trigger_stats(s, by="line")
    with pytest.raises(ValueError, match="srgen_steps"):
        trigger_stats(s.drop(columns="changed"))


def test_srgen_accuracy_pairs_the_runs():
    key = {"problem_id": ["a", "a", "b", "b", "c"], "sample": [0, 1, 0, 1, 0], "turn": 1}
    plain = pd.DataFrame({**key, "correct": [False, True, False, True, True]})
    srgen = pd.DataFrame({**key, "correct": [True, True, False, False, True]})
    a = srgen_accuracy(plain, srgen, {"a": "x", "b": "y", "c": "y"}, n_boot=200)
    assert a.loc["all", ["acc_plain", "acc_srgen", "fixed", "broken"]].tolist() == [0.6, 0.6, 0.2, 0.2]
    assert a.loc["all", "delta"] == 0.0 and a.loc["all", "delta_lo"] <= 0.0 <= a.loc["all", "delta_hi"]
    assert a.loc["x", ["acc_plain", "acc_srgen", "delta"]].tolist() == [0.5, 1.0, 0.5]
    assert a.loc["y", "n_problems"] == 2
    with pytest.raises(ValueError, match="class"):
        srgen_accuracy(plain, srgen, {"a": "x"})
