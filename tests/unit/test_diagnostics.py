"""The second-attempt diagnostics (sclab.probes, sclab.metrics.second_attempt, sclab.toy.edits) on
hand-built records and a scripted generator (no model); their docstring examples run in test_doctests.py."""

import numpy as np
import pandas as pd
import pytest

from sclab import probes as PR
from sclab.generate import Completion, SamplingParams
from sclab.metrics import answer_changed_rate, bootstrap_ci, correction_metrics
from sclab.metrics import second_attempt as SA
from sclab.rollout import run_episodes
from sclab.tasks import Problem
from sclab.toy import edits as ED
from sclab.toy.world import ArithTask, extract_final

pytestmark = pytest.mark.unit
P2 = SamplingParams(n=2, max_new_tokens=16)


def records(rows):
    """rows: (problem_id, sample, correct_1, correct_2, extracted_1, extracted_2) -> long records."""
    out = []
    for pid, s, c1, c2, e1, e2 in rows:
        for t, c, e in ((1, c1, e1), (2, c2, e2)):
            out.append({"problem_id": pid, "sample": s, "turn": t, "correct": bool(c), "extracted": e,
                        "response": f"{pid}/{s}/{t} > {e}"})
    return pd.DataFrame(out)


# right at t1: P0s0 P0s1 P2s0 P3s1 (kept: P0s0 P2s0 P3s1 -> 3/4; changed: P0s1 -> 1/4)
# wrong at t1: P1s0 P1s1 P2s1 P3s0 (fixed: P1s0 P3s0 -> 2/4; changed: P1s0, P3s0 None->9 -> 2/4;
#              P2s1 None->None is no change)
HAND = records([("P0", 0, 1, 1, "1", "1"), ("P0", 1, 1, 0, "1", "2"),
                ("P1", 0, 0, 1, "3", "5"), ("P1", 1, 0, 0, "3", "3"),
                ("P2", 0, 1, 1, "7", "7"), ("P2", 1, 0, 0, None, None),
                ("P3", 0, 0, 1, None, "9"), ("P3", 1, 1, 1, "9", "9")])
# fresh samples: right for P0s0, P1s0, P1s1, P3s0 -> 4/8
PARALLEL = pd.DataFrame({"problem_id": ["P0", "P0", "P1", "P1", "P2", "P2", "P3", "P3"], "sample": [0, 1] * 4,
                         "correct": [1, 0, 1, 1, 0, 0, 1, 0]}).astype({"correct": bool})


# ----------------------------------------------------------------------------- keep / fix
def test_keep_fix_by_hand():
    r = SA.keep_fix_rates(HAND)
    assert (r["n"], r["n_right"], r["n_wrong"]) == (8, 4, 4)
    assert r["keep_right"] == 0.75 and r["fix_wrong"] == 0.5 and r["selectivity"] == 0.25
    assert r["change_right"] == 0.25 and r["change_wrong"] == 0.5
    # one definition (sclab.records.answer_changed): failure -> failure (P2s1) is no change, so
    # the changes are P0s1, P1s0, P3s0 -> 3/8 overall
    assert answer_changed_rate(HAND) == 3 / 8


def test_keep_fix_match_correction_metrics():
    m = correction_metrics(HAND)
    r = SA.keep_fix_rates(HAND)
    assert r["keep_right"] == pytest.approx(1 - m["delta_c2i"] / m["acc_t1"])
    assert r["fix_wrong"] == pytest.approx(m["delta_i2c"] / (1 - m["acc_t1"]))
    assert (r["keep_right"], r["fix_wrong"]) == pytest.approx((m["cl"], m["cs"]))  # equal samples per problem


def test_keep_fix_nan_without_wrong_answers():
    r = SA.keep_fix_rates(records([("a", 0, 1, 1, "1", "1"), ("b", 0, 1, 0, "2", "3")]))
    assert r["keep_right"] == 0.5 and np.isnan(r["fix_wrong"]) and np.isnan(r["change_wrong"])


def test_keep_fix_clear_errors():
    with pytest.raises(ValueError, match="extracted"):
        SA.keep_fix_rates(HAND.drop(columns="extracted"))
    with pytest.raises(ValueError, match="no records at turn 3"):
        SA.keep_fix_rates(HAND, t2=3)


# ----------------------------------------------------------------------------- sequential vs parallel
def test_sequential_vs_parallel_by_hand():
    r = SA.sequential_vs_parallel(HAND, PARALLEL, n_boot=200)
    assert (r["acc_t1"], r["acc_t2"], r["acc_parallel"]) == (0.5, 0.625, 0.5)
    assert r["seq_minus_parallel"] == 0.125
    assert r["union_seq"] == 0.75 and r["union_parallel"] == 0.875
    assert r["seq_minus_parallel_lo"] <= 0.125 <= r["seq_minus_parallel_hi"]


def test_paired_ci_is_the_problem_bootstrap():
    r = SA.sequential_vs_parallel(HAND, PARALLEL, n_boot=200, seed=4)
    long = pd.concat([HAND[HAND.turn == 2], PARALLEL.assign(turn=3)])
    fn = lambda d: d[d.turn == 2].correct.mean() - d[d.turn == 3].correct.mean()
    lo, hi = bootstrap_ci(long, fn, n_boot=200, seed=4)
    assert (r["seq_minus_parallel_lo"], r["seq_minus_parallel_hi"]) == pytest.approx((lo, hi))


def test_same_samples_give_zero_difference():
    same = HAND[HAND.turn == 2].drop(columns="turn")
    r = SA.sequential_vs_parallel(HAND, same, n_boot=50)
    assert r["seq_minus_parallel"] == r["seq_minus_parallel_lo"] == r["seq_minus_parallel_hi"] == 0


def test_parallel_errors():
    with pytest.raises(ValueError, match="no row for problem 'P3' sample 1"):
        SA.sequential_vs_parallel(HAND, PARALLEL.iloc[:-1])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['correct'\]"):
        SA.sequential_vs_parallel(HAND, PARALLEL.drop(columns="correct"))
    with pytest.raises(ValueError, match="more than one row"):
        SA.sequential_vs_parallel(HAND, pd.concat([PARALLEL, PARALLEL]))
    with pytest.raises(ValueError, match="sample_offset"):
        PR.parallel_resample(None, ArithTask(), ArithTask().problems(1), SamplingParams(n=4), sample_offset=2)


# ----------------------------------------------------------------------------- scripted generation
class Scripted:
    """Answers each conversation with fn(conversation, sample id); records every call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def generate(self, convs, params, desc="", sample_ids=None):
        self.calls.append((desc, [list(c) for c in convs], sample_ids))  # copies: episodes extend them
        ids = sample_ids or [None] * len(convs)
        return [[Completion(text=self.fn(c, s if s is not None else i), token_ids=[1], logprob=-1.0, tokens=1,
                            time=0.0, finish_reason="stop") for i in range(params.n)] for c, s in zip(convs, ids)]


def copier(conv, sample):
    """Keeps attempt 1's answer; on turn 1 solves right for sample 0 and answers 0 for others."""
    if len(conv) == 1:
        return ED.toy_clean_solution(Problem("", conv[0]["content"], "")) if sample == 0 else "same > 0"
    return f"same > {extract_final(conv[1]['content'])}"


def resampler(conv, sample):
    """Ignores attempt 1: right on even samples (every turn), '99' (never right) otherwise."""
    q = conv[-1]["content"].replace("again ", "")
    return ED.toy_clean_solution(Problem("", q, "")) if sample % 2 == 0 else "same > 99"


@pytest.fixture(scope="module")
def task():
    return ArithTask()


@pytest.fixture(scope="module")
def probs(task):
    return task.problems(6, seed=1)


def test_toy_clean_solution_is_graded_correct(task):
    probs = task.problems(50, seed=2)
    for p in probs:
        text = ED.toy_clean_solution(p)
        assert text == p.meta["solution"] and task.grade(p, text).correct
        mc = task.as_multiple_choice(p, ["1", "2", "3"])
        assert task.grade(mc, ED.toy_clean_solution(mc)).correct


def test_probe_conversation_is_the_episodes_turn_two(task, probs):
    gen = Scripted(lambda c, s: f"{len(c)} {s} > {s}")
    df = run_episodes(gen, task, probs, strategy="retry", params=P2)
    t1 = df[df.turn == 1].set_index(["problem_id", "sample"])["response"].to_dict()
    episode_convs = gen.calls[1][1]
    probe = PR.probe_second_attempt(gen, task, probs, "retry", P2, t1)
    assert gen.calls[-1][1] == episode_convs and gen.calls[-1][2] == [0, 1] * len(probs)
    assert episode_convs[0] == [{"role": "user", "content": probs[0].question},
                                {"role": "assistant", "content": t1[(probs[0].id, 0)]},
                                {"role": "user", "content": f"again {probs[0].question}"}]
    assert list(probe.columns) == PR.PROBE_COLUMNS
    assert (probe.response.values == df[df.turn == 2].response.values).all()


def test_probe_errors(task, probs):
    gen = Scripted(copier)
    with pytest.raises(ValueError, match="only single-step"):
        PR.probe_second_attempt(gen, type("ChatArith", (ArithTask,), {"dialect": "chat"})(), probs,
                               "huang-review", P2, {(probs[0].id, 0): "x"})
    with pytest.raises(ValueError, match="not among"):
        PR.probe_second_attempt(gen, task, probs, "retry", P2, {("nope", 0): "x"})
    with pytest.raises(ValueError, match="no first attempts"):
        PR.probe_second_attempt(gen, task, probs, "retry", P2, {})
    with pytest.raises(KeyError, match="unknown strategy"):
        PR.probe_second_attempt(gen, task, probs, "nope", P2, {(probs[0].id, 0): "x"})


def test_derangement():
    for seed in range(20):
        perm = PR.derangement(5, seed)
        assert sorted(perm) == list(range(5)) and (perm != np.arange(5)).all()
    assert (PR.derangement(7, 3) == PR.derangement(7, 3)).all()
    with pytest.raises(ValueError, match="at least 2"):
        PR.derangement(1)


def test_swap_donors(task, probs):
    df = run_episodes(Scripted(copier), task, probs, params=P2)
    donors = PR.swap_donors(df, probs, seed=5)
    assert len(donors) == 12 and all(d[0] != k[0] and d[1] == k[1] for k, d in donors.items())
    assert sorted(d for d in donors.values()) == sorted(donors)           # every attempt donated once
    assert donors == PR.swap_donors(df, probs, seed=5)
    with pytest.raises(ValueError, match="has no turn-1 record"):
        PR.swap_donors(df[~((df.problem_id == probs[0].id) & (df["sample"] == 1))], probs, seed=5)


def test_copier_reads_attempt_one(task, probs):
    gen = Scripted(copier)
    df = run_episodes(gen, task, probs, params=P2)
    gold = PR.gold_probe(gen, task, probs, "retry", P2, ED.toy_clean_solution)
    swap = PR.context_swap(gen, task, probs, "retry", P2, df, seed=1)
    s = SA.probe_summary(df, gold, swap)
    own = (df[df.turn == 2].extracted == [p.gold for p in probs for _ in range(2)]).mean()
    assert s["acc_t2_own"] == own and s["acc_t2_gold"] == 1.0
    gold_of = {p.id: p.gold for p in probs}
    expected = np.mean([gold_of[pid] == e for pid, e in zip(swap.problem_id, swap.donor_extracted)])
    assert s["acc_t2_swap"] == expected and s["swap_follows_donor"] == 1.0
    assert (swap.donor_problem_id != swap.problem_id).all()
    r = SA.keep_fix_rates(df)
    assert r["keep_right"] == 1.0 and r["change_right"] == 0.0


def test_resampler_ignores_attempt_one(task, probs):
    gen = Scripted(resampler)
    df = run_episodes(gen, task, probs, params=P2)
    s = SA.probe_summary(df, PR.gold_probe(gen, task, probs, "retry", P2, ED.toy_clean_solution),
                        PR.context_swap(gen, task, probs, "retry", P2, df))
    assert s["acc_t2_own"] == s["acc_t2_gold"] == s["acc_t2_swap"] == 0.5
    assert s["gold_minus_own"] == s["swap_minus_own"] == 0.0
    par = PR.parallel_resample(gen, task, probs, P2)
    assert list(par.columns) == PR.PARALLEL_COLUMNS and (par.sample_id == par["sample"] + 1000).all()
    assert SA.sequential_vs_parallel(df, par, n_boot=50)["seq_minus_parallel"] == 0.0


def test_probe_summary_needs_a_probe():
    with pytest.raises(ValueError, match="gold= and/or swap="):
        SA.probe_summary(HAND)


# ----------------------------------------------------------------------------- edit locations
Q = Problem("q", "7 ; +3 -5 ; 2 ?", "3")
RIGHT = "7 +3 = 10 ; 10 -5 = 5 ; 5 +3 = 8 ; 8 -5 = 3 ; > 3"
WRONG = "7 +3 = 10 ; 10 -5 = 6 ; 6 +3 = 9 ; 9 -5 = 4 ; > 4"      # first wrong line: 1
SECONDS = {0: RIGHT,                                                  # at
           1: "same > 4",                                             # no lines
           2: "7 +3 = 11 ; 11 -5 = 6 ; 6 +3 = 9 ; 9 -5 = 4 ; > 4",    # before
           3: "7 +3 = 10 ; 10 -5 = 6 ; 6 +3 = 10 ; 10 -5 = 5 ; > 5",  # after
           4: "7 +3 = 10 ; 10 -5 = 6 ; 6 +3 = 9 ; 9 -5 = 4 ; > 5"}    # same lines, other answer: after


def test_locate_edits_by_hand():
    first = {("q", s): WRONG for s in SECONDS} | {("q", 5): "garbage > 4"}
    second = {("q", s): t for s, t in SECONDS.items()} | {("q", 5): RIGHT}
    t = ED.locate_edits([Q], first, second)
    assert t.kind.tolist() == ["at", "no_lines", "before", "after", "after", "unlocated"]
    assert t.edit_line.isna().tolist() == [False, True, False, False, False, False]
    assert t.edit_line.dropna().tolist() == [1, 0, 2, 4, 0]
    assert t.first_wrong.fillna(-1).tolist() == [1] * 5 + [-1]
    s = ED.summarize_edits(t)
    assert s["n_edits"] == 6 and s["edit_at_first_wrong"] == 1 / 6 and s["edit_after_first_wrong"] == 2 / 6
    assert sum(v for k, v in s.items() if k != "n_edits") == pytest.approx(1.0)


def test_edit_locations_selects_wrong_then_different():
    rows = []
    for s, (a1, a2) in enumerate([(WRONG, RIGHT), (WRONG, WRONG), (RIGHT, WRONG), (WRONG, "same > 4")]):
        for t, text in ((1, a1), (2, a2)):
            rows.append({"problem_id": "q", "sample": s, "turn": t, "response": text, "correct": text == RIGHT,
                         "extracted": extract_final(text)})
    df = pd.DataFrame(rows)
    t = ED.edit_locations(df, [Q])
    assert t["sample"].tolist() == [0, 3] and t.kind.tolist() == ["at", "no_lines"]
    par = pd.DataFrame({"problem_id": "q", "sample": range(4), "correct": True, "response": RIGHT})
    base = ED.edit_locations(df, [Q], second=par)
    assert base["sample"].tolist() == [0, 1, 3] and set(base.kind) == {"at"}
    with pytest.raises(ValueError, match="response"):
        ED.edit_locations(df.drop(columns="response"), [Q])
    assert np.isnan(ED.summarize_edits(t.iloc[:0])["edit_at_first_wrong"])


def test_report_is_flat_floats(task, probs):
    gen = Scripted(copier)
    df = run_episodes(gen, task, probs, params=P2)
    rep = SA.second_attempt_report(df, parallel=PR.parallel_resample(gen, task, probs, P2),
                                  gold=PR.gold_probe(gen, task, probs, "retry", P2, ED.toy_clean_solution),
                                  swap=PR.context_swap(gen, task, probs, "retry", P2, df), problems=probs, n_boot=50)
    for k in ("keep_right", "fix_wrong", "selectivity", "acc_parallel", "acc_t2_gold", "acc_t2_swap",
              "edit_at_first_wrong", "parallel_edit_at_first_wrong"):
        assert k in rep
    assert all(isinstance(v, float) for v in rep.values())


def _m(**kw):
    d = dict(acc_t1=0.6, acc_t2=0.6, delta=0.0, delta_lo=-0.03, delta_hi=0.03, answer_changed_rate=0.4)
    d.update(kw)
    return d


def test_mechanism_reads_where_a_delta_comes_from():
    from sclab.metrics import mechanism

    base = _m()
    assert mechanism(_m(acc_t1=0.3, acc_t2=0.6, delta=0.3, delta_lo=0.25, delta_hi=0.35), base) == "sabotaged attempt 1"
    assert mechanism(_m(delta=-0.2, delta_lo=-0.25, delta_hi=-0.15), base) == "c->i damage"
    assert mechanism(_m(answer_changed_rate=0.02), base) == "copy collapse"
    assert mechanism(_m(answer_changed_rate=0.02, change_wrong=0.9), base) == "no significant change"
    assert mechanism(_m(change_wrong=0.05), base) == "copy collapse"
    assert mechanism(_m(acc_t1=0.9, acc_t2=0.9), base) == "both attempts improved"
    assert mechanism(_m(acc_t1=0.4, acc_t2=0.4), base) == "both attempts degraded"
    assert mechanism(_m(), base) == "no significant change"
    up = dict(acc_t2=0.75, delta=0.15, delta_lo=0.1, delta_hi=0.2)
    assert mechanism(_m(**up, acc_t2_gold=0.95, acc_t2_swap=0.3), base) == "reads attempt 1"
    assert mechanism(_m(**up, acc_t2_gold=0.75, acc_t2_swap=0.75, seq_minus_parallel_lo=0.05), base) == "beats resampling"
    assert mechanism(_m(**up, seq_minus_parallel_lo=-0.01), base) == "sharper second attempt only"
    # without a base model there is no sabotage reading
    assert mechanism(_m(acc_t1=0.3, acc_t2=0.6, delta=0.3, delta_lo=0.25, delta_hi=0.35)) != "sabotaged attempt 1"
