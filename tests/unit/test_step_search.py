"""sclab.sharpening.search's pure parts: pruning and the search loop on synthetic trees against brute
force, the step schedule, delimiter counting, and best-of-N at equal tokens against enumeration."""
import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from sclab.generate.hf import DelimiterStop
from sclab.sharpening import (Hyp, beam_search, curves, delimiter_counts, equal_token_bon, prune, search_curves,
                              segment_lines, settled)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("scores, beam, kept, dropped", [
    ([-1.0, -3.0, -2.0], 2, [0, 2], 1),            # the two best, best first
    ([-1.0, -3.0, -2.0], 5, [0, 2, 1], 0),         # a wide beam keeps all, sorted
    ([-2.0, -1.0, -2.0, -2.0], 2, [1, 0], 2),      # ties: first come first
    ([-0.5], 1, [0], 0),                           # one candidate
    ([], 3, [], 0),                                # nothing to keep
])
def test_prune_keeps_the_best_by_score(scores, beam, kept, dropped):
    cands = [Hyp((i,), s) for i, s in enumerate(scores)]
    got, n = prune(cands, beam)
    assert [h.ids[0] for h in got] == kept and n == dropped


def test_prune_counts_a_repeated_token_sequence_once():
    # expansions 0 and 2 of one prefix wrote the same line: one hypothesis, one slot
    cands = [Hyp((1, 5), -1.0), Hyp((1, 6), -2.0), Hyp((1, 5), -1.0), Hyp((1, 7), -3.0)]
    got, n = prune(cands, 2)
    assert [h.ids for h in got] == [(1, 5), (1, 6)] and n == 1


@pytest.mark.parametrize("seed", range(5))
def test_prune_equals_sorting_everything(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=int(rng.integers(1, 20)))   # continuous: no ties
    beam = int(rng.integers(1, 8))
    got, n = prune([Hyp((i,), float(s)) for i, s in enumerate(scores)], beam)
    assert [h.ids[0] for h in got] == list(np.argsort(-scores)[:beam])
    assert n == max(0, len(scores) - beam)


def test_prune_rejects_a_bad_beam():
    for bad in (0, -1, 1.5, None):
        with pytest.raises(ValueError, match="beam must be an int >= 1"):
            prune([Hyp((1,), 0.0)], bad)


@pytest.mark.parametrize("live, finished, done", [
    ([], [], True),                          # nothing left to extend
    ([-1.0], [], False),                     # no answer yet
    ([-2.0, -1.0], [-1.5], False),           # a live prefix still beats the best answer
    ([-2.0, -1.5], [-1.5], True),            # a tie: nothing live can get above it
    ([-3.0], [-9.0, -2.0], True),            # the best answer counts, not the last
])
def test_settled(live, finished, done):
    assert settled([Hyp((i,), s) for i, s in enumerate(live)],
                   [Hyp((9, i), s, "stop") for i, s in enumerate(finished)]) is done


@pytest.mark.parametrize("lines, growth, expected", [
    (1, 1.0, [1, 1, 1, 1, 1]),        # a check after every line
    (1, 2.0, [1, 2, 4, 8, 16]),       # IDS-style: checks after lines 1, 3, 7, 15, 31
    (2, 1.5, [2, 3, 4, 7, 10]),       # round(2 * 1.5^k)
    (3, 1.0, [3, 3, 3, 3, 3]),        # fixed three-line segments
])
def test_segment_lines(lines, growth, expected):
    assert [segment_lines(k, lines, growth) for k in range(5)] == expected


@pytest.mark.parametrize("lines, growth, match", [(0, 1.0, "step_lines"), (1.5, 1.0, "step_lines"),
                                                  (1, 0.5, "step_growth"), (1, float("nan"), "step_growth")])
def test_segment_lines_errors(lines, growth, match):
    with pytest.raises(ValueError, match=match):
        segment_lines(0, lines, growth)


class FakeTokenizer:
    """Four tokens whose texts hold 0, 1, 2 and 0 newlines."""
    texts = ["a", "b\n", "\n.\n", "<eos>"]

    def __len__(self):
        return len(self.texts)

    def batch_decode(self, seqs, skip_special_tokens=False):
        return ["".join(self.texts[i] for i in s) for s in seqs]


def test_delimiter_counts():
    # ids 4, 5: embedding rows past the vocabulary (a padded lm head) hold no delimiter
    assert delimiter_counts(FakeTokenizer(), "\n", 6).tolist() == [0, 1, 2, 0, 0, 0]
    assert delimiter_counts(FakeTokenizer(), "\n.", 4).tolist() == [0, 0, 1, 0]
    with pytest.raises(ValueError, match="occurs in no token"):
        delimiter_counts(FakeTokenizer(), ";", 4)
    with pytest.raises(ValueError, match="non-empty str"):
        delimiter_counts(FakeTokenizer(), "", 4)


def test_delimiter_stop_counts_only_generated_tokens():
    counts = torch.tensor([0, 1, 2, 0])
    stop = DelimiterStop(counts, need=2, start=2)
    ids = torch.tensor([[1, 1, 0, 1],      # the prompt's delimiters do not count: 1 generated
                        [0, 0, 2, 0],      # one token holding two
                        [0, 0, 1, 1]])     # two tokens holding one each
    assert stop(ids, None).tolist() == [False, True, True]


# ----------------------------------------------------------------------------- the loop, on synthetic trees
DEPTH = 3


def children(c, ids, k=3):
    """A fixed random tree: k children per node with log-probs in (-3, 0), seeded by the node."""
    rng = np.random.default_rng([c, len(ids), *ids])
    return [(t, float(-3 * rng.random())) for t in range(k)]


def tree_propose(step, live):
    return [[(Hyp(h.ids + (t,), h.score + lp, "stop" if len(h.ids) + 1 == DEPTH else None), 1)
             for t, lp in children(c, h.ids)] for c, h in live]


def brute_force_best(c):
    best = -np.inf
    for path in itertools.product(range(3), repeat=DEPTH):
        best = max(best, sum(dict(children(c, path[:d]))[path[d]] for d in range(DEPTH)))
    return best


def test_an_unpruned_beam_finds_the_best_leaf_of_the_tree():
    found = beam_search(6, tree_propose, beam=27, max_steps=10)   # 27 = 3^3 leaves: nothing is ever cut
    for c, f in enumerate(found):
        assert f.pruned == 0
        assert f.finished[0].score == pytest.approx(brute_force_best(c))
        assert [h.score for h in f.finished] == sorted((h.score for h in f.finished), reverse=True)


def test_beam_one_follows_the_best_child():
    for c, f in enumerate(beam_search(4, tree_propose, beam=1, max_steps=10)):
        ids, score = (), 0.0
        for _ in range(DEPTH):   # by hand: the best child of the one kept prefix, each step
            t, lp = max(children(c, ids), key=lambda x: x[1])
            ids, score = ids + (t,), score + lp
        assert f.finished[0].ids == ids and f.finished[0].score == pytest.approx(score)
        assert f.generated_tokens == 3 * DEPTH and f.steps == DEPTH and f.pruned == 2 * (DEPTH - 1)


def test_a_wider_beam_can_end_lower():
    # beam 1 keeps A (-1) and finishes at -2.1; beam 2 also keeps B (-1.2), whose children push A's out
    # at step 2 and then finish at -5: no "wider never worse" by construction, only for an unpruned beam
    tree = {(): [("A", -1.0, None), ("B", -1.2, None)],
            ("A",): [("A1", -1.0, None)], ("B",): [("B1", -0.1, None), ("B2", -0.2, None)],
            ("A", "A1"): [("end", -0.1, "stop")], ("B", "B1"): [("end", -3.7, "stop")],
            ("B", "B2"): [("end", -4.6, "stop")]}

    def propose(step, live):
        return [[(Hyp(h.ids + (t,), h.score + lp, fin), 1) for t, lp, fin in tree[h.ids]] for _, h in live]

    narrow, wide = (beam_search(1, propose, beam=b, max_steps=5)[0] for b in (1, 2))
    assert narrow.finished[0].score == pytest.approx(-2.1) and wide.finished[0].score == pytest.approx(-5.0)
    assert beam_search(1, propose, beam=3, max_steps=5)[0].finished[0].score == pytest.approx(-2.1)


def test_a_finished_answer_no_live_prefix_can_beat_ends_the_search():
    def propose(step, live):   # step 0: an answer at -0.5 and a live prefix at -0.7; later steps would go on
        return [[(Hyp(h.ids + (0,), h.score - 0.5, "stop"), 4), (Hyp(h.ids + (1,), h.score - 0.7), 6)]
                for _, h in live]

    f = beam_search(1, propose, beam=4, max_steps=10)[0]
    assert f.steps == 1 and f.generated_tokens == 10 and f.finished[0].ids == (0,)


def test_max_steps_finishes_the_live_prefixes_as_length():
    def propose(step, live):   # never finishes
        return [[(Hyp(h.ids + (t,), h.score - 1.0 - t), 1) for t in (0, 1)] for _, h in live]

    f = beam_search(2, propose, beam=2, max_steps=3)[0]
    assert f.steps == 3 and {h.finish for h in f.finished} == {"length"}
    assert f.finished[0].ids == (0, 0, 0) and f.finished[0].score == -3.0
    assert f.generated_tokens == 2 + 4 + 4   # one prefix at step 0, then two


def test_duplicate_candidates_cost_tokens_but_take_one_slot():
    def propose(step, live):   # both expansions write the same step
        return [[(Hyp(h.ids + (7,), h.score - 1.0, "stop" if step else None), 5)] * 2 for _, h in live]

    f = beam_search(1, propose, beam=4, max_steps=5)[0]
    assert f.generated_tokens == 5 * 2 * 2 and len(f.finished) == 1 and f.pruned == 0


def test_beam_search_errors():
    with pytest.raises(ValueError, match="max_steps must be an int >= 1"):
        beam_search(1, tree_propose, beam=2, max_steps=0)
    with pytest.raises(ValueError, match="propose returned candidates for 0 prefixes, expected 1"):
        beam_search(1, lambda step, live: [], beam=2, max_steps=2)


# ----------------------------------------------------------------------------- equal-compute comparison
def brute_force_bon(rewards, correct, N):
    """Expected correctness of the top reward of a uniform N-subset (rewards distinct here)."""
    subs = list(itertools.combinations(range(len(rewards)), N))
    return np.mean([correct[max(s, key=lambda j: rewards[j])] for s in subs])


def toy_tables(P=8, n=6, seed=0):
    rng = np.random.default_rng(seed)
    pool, greedy, search = [], [], []
    for p in range(P):
        tok = int(rng.integers(8, 12))
        for s in range(n):
            pool.append({"problem_id": f"p{p}", "sample": s, "turn": 1, "tokens": tok,
                         "correct": bool(rng.random() < .5), "extracted": str(int(rng.integers(0, 3))),
                         "self_reward": float(rng.normal()),
                         "self_reward_mean": float(rng.normal())})
        greedy.append({"problem_id": f"p{p}", "sample": 0, "turn": 1, "tokens": tok,
                       "correct": bool(rng.random() < .5)})
        search.append({"problem_id": f"p{p}", "sample": 0, "turn": 1, "correct": bool(rng.random() < .5),
                       "generated_tokens": int(rng.integers(5, 9 * tok)), "self_reward": float(rng.normal())})
    return pd.DataFrame(pool), pd.DataFrame(greedy), pd.DataFrame(search)


def test_equal_token_bon_against_enumeration():
    pool, _, search = toy_tables()
    eq = equal_token_bon(pool, search)
    for pid, spent in zip(search["problem_id"], search["generated_tokens"]):
        g = pool[pool["problem_id"] == pid]
        want = round(spent / g["tokens"].iloc[0])
        N = min(max(want, 1), len(g))
        assert eq.loc[pid, "N"] == N and bool(eq.loc[pid, "clipped"]) == (want > len(g))
        assert eq.loc[pid, "tokens"] == N * g["tokens"].iloc[0]
        assert eq.loc[pid, "acc"] == pytest.approx(brute_force_bon(g["self_reward"].tolist(), g["correct"].tolist(), N))
    assert eq["clipped"].any() and not eq["clipped"].all()   # the table exercises both


def test_search_curves_against_independent_means():
    pool, greedy, search = toy_tables()
    classes = pd.Series(["a", "b"] * 4, index=[f"p{p}" for p in range(8)])
    t = search_curves(pool, greedy, {"s": search}, classes, n_boot=300)
    base = curves(pool, greedy, None, classes, n_boot=300)
    pd.testing.assert_frame_equal(t.loc[t["search"] == "", base.columns].reset_index(drop=True), base,
                                  check_dtype=False)   # curves' rows, untouched
    eq = equal_token_bon(pool, search)
    s = search.set_index("problem_id")
    g = greedy.set_index("problem_id")["correct"].astype(float)
    for name, pids in (("all", list(s.index)), ("a", list(classes.index[classes == "a"]))):
        row = t[(t["class"] == name) & (t["method"] == "s")].iloc[0]
        c = s.loc[pids, "correct"].astype(float)
        assert row["acc"] == pytest.approx(c.mean()) and row["n_problems"] == len(pids)
        assert row["vs_bon"] == pytest.approx((c - eq.loc[pids, "acc"]).mean())
        assert row["vs_greedy"] == pytest.approx((c - g.loc[pids]).mean())
        assert row["tokens"] == pytest.approx(s.loc[pids, "generated_tokens"].mean())
        assert row["acc_lo"] <= row["acc"] <= row["acc_hi"] and row["vs_bon_lo"] <= row["vs_bon"] <= row["vs_bon_hi"]
        bon = t[(t["class"] == name) & (t["method"] == "best-of-N (equal tokens)") & (t["search"] == "s")].iloc[0]
        assert bon["acc"] == pytest.approx(eq.loc[pids, "acc"].mean())
        assert bon["generations"] == pytest.approx(eq.loc[pids, "N"].mean())


def test_search_curves_errors():
    pool, greedy, search = toy_tables()
    with pytest.raises(ValueError, match="searches must map a label"):
        search_curves(pool, greedy, {})
    with pytest.raises(ValueError, match="search 's' has no record of problem 'p0'"):
        search_curves(pool, greedy, {"s": search[search["problem_id"] != "p0"]}, n_boot=10)
    with pytest.raises(ValueError, match="the pool has no samples of problem 'q'"):
        equal_token_bon(pool, search.iloc[:1].assign(problem_id="q"))
