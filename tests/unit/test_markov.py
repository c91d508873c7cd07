"""sclab.metrics.markov: DSER's two-state chain against long simulations, hand counts and 01's
convergence model (CL = 1 − p_CI, CS = p_IC)."""
import numpy as np
import pandas as pd
import pytest

from sclab.metrics.convergence import fit_convergence, predict_rounds
from sclab.metrics.correction import correction_metrics
from sclab.metrics.markov import (chain_counts, predict_accuracy, round_accuracy, simulate, stationary, to_convergence,
                                  transition_rates, vote_last, vote_simulated)

pytestmark = pytest.mark.unit


def chain_records(states, answers=None):
    """problems x chains x turns booleans -> records (answer "r" when right, else `answers` or "w")."""
    rows = []
    P, C, T = states.shape
    for p in range(P):
        for c in range(C):
            for t in range(T):
                ok = bool(states[p, c, t])
                ans = "r" if ok else (answers[p, c, t] if answers is not None else "w")
                rows.append({"problem_id": f"p{p}", "sample": c, "turn": t + 1, "correct": ok, "extracted": ans})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("p_ic, p_ci", [(0.3, 0.1), (0.05, 0.2), (0.5, 0.5)])
def test_stationary_accuracy_is_where_a_long_simulation_settles(p_ic, p_ci):
    pi = stationary(p_ic, p_ci)
    chains = 20_000
    s = simulate(p_ic, p_ci, acc0=0.0, rounds=200, chains=chains, seed=1)
    se = np.sqrt(pi * (1 - pi) / chains)
    assert abs(s[0, :, -1].mean() - pi) < 4 * se                    # across chains, after mixing
    one = simulate(p_ic, p_ci, acc0=1.0, rounds=200_000, seed=2)[0, 0]
    # a single chain's time average: its autocorrelation 1 − p_IC − p_CI widens the SE by sqrt((1+ρ)/(1−ρ))
    rho = 1 - p_ic - p_ci
    assert abs(one.mean() - pi) < 4 * np.sqrt(pi * (1 - pi) / len(one) * (1 + rho) / (1 - rho))


@pytest.mark.parametrize("acc0, p_ic, p_ci", [(0.2, 0.3, 0.1), (0.9, 0.05, 0.2), (0.5, 0.0, 0.0), (0.0, 1.0, 1.0)])
def test_prediction_agrees_with_convergence_and_with_simulation(acc0, p_ic, p_ci):
    pred = predict_accuracy(acc0, p_ic, p_ci, 8)
    conv = to_convergence(p_ic, p_ci)
    assert pred == pytest.approx(predict_rounds(acc0, conv["cl"], conv["cs"], 8), abs=1e-12)
    fit = fit_convergence(conv["cl"], conv["cs"], acc0)
    assert fit["alpha"] == pytest.approx(1 - p_ic - p_ci)
    if p_ic + p_ci > 0:
        assert fit["upp"] == pytest.approx(stationary(p_ic, p_ci))
    s = simulate(p_ic, p_ci, acc0, rounds=8, chains=40_000, seed=3)[0]
    assert s.mean(0) == pytest.approx(pred, abs=4 * 0.5 / np.sqrt(40_000))


def test_stationary_edge_and_errors():
    assert np.isnan(stationary(0.0, 0.0))
    with pytest.raises(ValueError, match=r"p_ci must lie in \[0, 1\]"):
        stationary(0.1, 1.5)
    with pytest.raises(ValueError, match="rounds must be >= 0"):
        predict_accuracy(0.5, 0.1, 0.1, -1)


def test_rates_by_hand_and_per_class():
    # p0: two chains over 3 turns; p1: one chain. Transitions (t -> t+1):
    # p0 s0: W->R, R->R   p0 s1: R->W, W->W   p1 s0: R->R, R->W
    states = {"p0": [[0, 1, 1], [1, 0, 0]], "p1": [[1, 1, 0]]}
    rows = [{"problem_id": p, "sample": s, "turn": t + 1, "correct": bool(v)}
            for p, ch in states.items() for s, seq in enumerate(ch) for t, v in enumerate(seq)]
    df = pd.DataFrame(rows)
    counts = chain_counts(df)
    assert counts.loc["p0"].to_dict() == {"from_wrong": 2, "w2r": 1, "from_right": 2, "r2w": 1, "n0": 2, "c0": 1}
    r = transition_rates(df, classes={"p0": "a", "p1": "b"}, n_boot=100)
    assert r.loc["all", "p_ic"] == pytest.approx(1 / 2)       # from wrong: 2 transitions, 1 fixed
    assert r.loc["all", "p_ci"] == pytest.approx(2 / 4)       # from right: 4 transitions, 2 broken
    assert r.loc["all", "stationary"] == pytest.approx(0.5)
    assert r.loc["all", "acc0"] == pytest.approx(2 / 3) and r.loc["all", "acc_last"] == pytest.approx(1 / 3)
    assert r.loc["b", "p_ci"] == pytest.approx(1 / 2) and np.isnan(r.loc["b", "p_ic"])   # p1 is never wrong before t3
    assert r.loc["all", "n_transitions"] == 6
    late = transition_rates(df, turns=[3], n_boot=10)          # only t2 -> t3: R->R, W->W, R->W
    assert late.loc["all", "p_ic"] == 0.0 and late.loc["all", "p_ci"] == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="lacks a turn"):
        transition_rates(df.iloc[1:], n_boot=10)
    with pytest.raises(ValueError, match="no class for problem 'p1'"):
        transition_rates(df, classes={"p0": "a"}, n_boot=10)


def test_two_turn_rates_are_01s_cl_and_cs():
    rng = np.random.default_rng(5)
    s = simulate(0.3, 0.15, 0.6, rounds=1, chains=4, problems=50, seed=6)
    s[:, :, 0] ^= rng.random(s[:, :, 0].shape) < 0.2   # perturb: problems differ
    df = chain_records(s)
    r, m = transition_rates(df, n_boot=10).loc["all"], correction_metrics(df)
    # with equal samples per problem CCT's per-problem weighting reduces to the pooled ratio
    assert r["p_ic"] == pytest.approx(m["cs"]) and 1 - r["p_ci"] == pytest.approx(m["cl"])
    assert r["stationary"] == pytest.approx(fit_convergence(m["cl"], m["cs"], m["acc_t1"])["upp"])


def test_rates_recover_a_simulated_chain_within_their_ci():
    s = simulate(0.25, 0.1, 0.4, rounds=6, chains=4, problems=200, seed=7)
    r = transition_rates(chain_records(s), n_boot=500).loc["all"]
    for key, true in (("p_ic", 0.25), ("p_ci", 0.1), ("stationary", stationary(0.25, 0.1))):
        assert r[f"{key}_lo"] <= true <= r[f"{key}_hi"], key
    acc = round_accuracy(chain_records(s), n_boot=200)
    assert acc["acc"].tolist() == pytest.approx(s.mean(axis=(0, 1)).tolist())
    assert (acc["acc_lo"] <= acc["acc"]).all() and (acc["acc"] <= acc["acc_hi"]).all()


def test_votes_over_the_last_iterations():
    s = np.array([[[0, 1, 1], [0, 0, 1]],    # last 2: 3 of 4 right
                  [[1, 1, 0], [1, 0, 1]],    # last 2: 2 of 4 right: a tie
                  [[1, 0, 0], [1, 0, 1]]],   # last 2: 1 of 4 right
                 bool)
    assert vote_simulated(s, 2).tolist() == [1.0, 0.5, 0.0]
    assert vote_simulated(s, 1).tolist() == [1.0, 0.5, 0.5]
    # all wrong answers alike ("w"): p1's 2-2 tie goes to the earliest vote (turn 2, sample 0: right)
    assert vote_last(chain_records(s), last=2).tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="last must satisfy"):
        vote_last(chain_records(s), last=4)


def test_a_real_vote_counts_split_wrong_answers():
    # 5 chains, last turn: 2 right, 3 wrong with 3 different answers: the two-state vote says wrong,
    # the vote over answers finds the right one (2 votes against 1, 1, 1)
    s = np.array([[[0, 1], [1, 0], [0, 1], [1, 0], [1, 0]]], bool)
    answers = np.full(s.shape, "w", dtype=object)
    answers[0, :, 1] = ["-", "x", "-", "y", "z"]
    assert vote_simulated(s, 1).tolist() == [0.0]
    assert vote_last(chain_records(s, answers), last=1).tolist() == [1.0]
    assert vote_last(chain_records(s), last=1).tolist() == [0.0]    # the same wrong answer 3 times wins
