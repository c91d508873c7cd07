"""The second-attempt diagnostics (sclab.probes, sclab.metrics.second_attempt, sclab.toy.edits) with the real
toy model: probes, swaps, parallel resamples, identities."""
import numpy as np
import pandas as pd
import pytest

from sclab import probes as PR
from sclab.generate import Generator, SamplingParams
from sclab.metrics import correction_metrics
from sclab.metrics import second_attempt as SA
from sclab.rollout import run_episodes
from sclab.tasks import get_task
from sclab.toy import edits as ED

pytestmark = pytest.mark.smoke
P = SamplingParams(temperature=1.0, max_new_tokens=64)


@pytest.fixture(scope="module")
def gen(toy):
    model, tok = toy
    return Generator(model, tok, cache=False, progress=False)


@pytest.fixture(scope="module")
def task():
    return get_task("arith")


@pytest.fixture(scope="module")
def probs(task):
    return task.problems(20, seed=7)


@pytest.fixture(scope="module")
def episodes(gen, task, probs):
    return run_episodes(gen, task, probs, strategy="retry", params=P)


@pytest.fixture(scope="module")
def gold(gen, task, probs):
    return PR.gold_probe(gen, task, probs, "retry", P, ED.toy_clean_solution)


@pytest.fixture(scope="module")
def swap(gen, task, probs, episodes):
    return PR.context_swap(gen, task, probs, "retry", P, episodes, seed=0)


def _regraded(df, task, probs):
    """Each row's response graded again against its own problem."""
    by_id = {p.id: p for p in probs}
    return [task.grade(by_id[r.problem_id], r.response).correct for r in df.itertuples()]


def test_clean_solution_is_graded_correct(task, probs):
    assert all(task.grade(p, ED.toy_clean_solution(p)).correct for p in probs)


def test_gold_probe_is_sensible(gold, episodes, task, probs):
    assert len(gold) == len(probs) and set(gold.attempt1) == {ED.toy_clean_solution(p) for p in probs}
    s = SA.probe_summary(episodes, gold=gold)
    # recomputed from the texts: every probe answer graded again; the episodes' own attempts 2 read off
    assert s["acc_t2_gold"] == pytest.approx(np.mean(_regraded(gold, task, probs)))
    assert s["acc_t2_own"] == pytest.approx(episodes[episodes.turn == 2].correct.mean())
    assert s["acc_t2_gold"] >= 0.5  # after a clean solution the base model mostly keeps or redoes it right


def test_swap_is_a_derangement(swap, task, probs, episodes):
    ids = [p.id for p in probs]
    assert (swap.donor_problem_id != swap.problem_id).all()
    assert sorted(swap.donor_problem_id) == sorted(ids)
    t1 = episodes[episodes.turn == 1].set_index("problem_id").response
    assert (swap.attempt1.values == t1.loc[swap.donor_problem_id].values).all()
    s = SA.probe_summary(episodes, swap=swap)
    assert s["acc_t2_swap"] == pytest.approx(np.mean(_regraded(swap, task, probs)))
    # the donor's own turn-1 answer against the swapped attempt 2's (an extraction failure on both sides
    # counts as the same answer)
    donor = episodes[episodes.turn == 1].set_index("problem_id").extracted.loc[swap.donor_problem_id]
    by_id = {p.id: p for p in probs}
    mine = [task.grade(by_id[r.problem_id], r.response).extracted for r in swap.itertuples()]
    same = [a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(mine, donor)]
    assert s["swap_follows_donor"] == pytest.approx(np.mean(same))


def test_keep_fix_match_correction_metrics(episodes):
    r, m = SA.keep_fix_rates(episodes), correction_metrics(episodes)
    assert r["n_right"] + r["n_wrong"] == 20 and r["n_right"] == round(20 * m["acc_t1"])
    assert r["keep_right"] == pytest.approx(1 - m["delta_c2i"] / m["acc_t1"])
    assert r["fix_wrong"] == pytest.approx(m["delta_i2c"] / (1 - m["acc_t1"]))


def test_own_attempts_reproduce_turn_two(gen, task, probs, episodes):
    t1 = episodes[episodes.turn == 1].set_index(["problem_id", "sample"]).response.to_dict()
    probe = PR.probe_second_attempt(gen, task, probs, "retry", P, t1)
    assert (probe.response.values == episodes[episodes.turn == 2].response.values).all()


def test_report_with_parallel(gen, task, probs, episodes, gold, swap):
    par = PR.parallel_resample(gen, task, probs, P)
    assert (par.response.values != episodes[episodes.turn == 1].response.values).any()  # fresh samples
    rep = SA.second_attempt_report(episodes, parallel=par, gold=gold, swap=swap, problems=probs, n_boot=200)
    # every rate recounted from the tables it summarises
    c = episodes.pivot(index=["problem_id", "sample"], columns="turn", values="correct").astype(bool)
    right, wrong = c[1], ~c[1]
    assert rep["keep_right"] == pytest.approx((right & c[2]).sum() / right.sum())
    assert rep["fix_wrong"] == pytest.approx((wrong & c[2]).sum() / wrong.sum())
    assert rep["selectivity"] == pytest.approx(rep["keep_right"] - rep["fix_wrong"])
    assert rep["acc_parallel"] == pytest.approx(np.mean(_regraded(par, task, probs)))
    assert rep["seq_minus_parallel"] == pytest.approx(c[2].mean() - rep["acc_parallel"])
    assert rep["acc_t2_gold"] == pytest.approx(gold.correct.mean())
    assert rep["acc_t2_swap"] == pytest.approx(swap.correct.mean())
    assert rep["seq_minus_parallel_lo"] <= rep["seq_minus_parallel"] <= rep["seq_minus_parallel_hi"]
