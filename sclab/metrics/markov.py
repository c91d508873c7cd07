"""A verify→refine loop as a two-state Markov chain (DSER, arXiv 2510.17498), no model needed.

Each round t → t+1 of a K-round run moves an answer between wrong (I) and right (C) with

    p_IC = P(right at t+1 | wrong at t),   p_CI = P(wrong at t+1 | right at t),

so accuracy follows Acc_{t+1} = Acc_t·(1 − p_CI) + (1 − Acc_t)·p_IC and tends to the stationary
accuracy p_IC / (p_IC + p_CI) whatever Acc_0 was. This is 01's convergence model
(`sclab.metrics.convergence`, arXiv 2508.16456) under other names: CL = 1 − p_CI, CS = p_IC,
alpha = CL − CS = 1 − p_IC − p_CI, Upp = CS/(1 − CL + CS) = the stationary accuracy.

`transition_rates` estimates the rates from records (turns 1..K, pooled over rounds, per problem
class, with problem-bootstrap CIs); `predict_accuracy` gives every round's accuracy from Acc_0 by
stepping the chain; `simulate` runs parallel chains and `vote_simulated` takes DSER's majority vote
over their last iterations; `vote_last` takes the same vote over the answers of a real run.

    >>> from sclab.metrics.convergence import fit_convergence, predict_rounds
    >>> p_ic, p_ci = 0.2, 0.1
    >>> round(stationary(p_ic, p_ci), 4), round(fit_convergence(cl=1 - p_ci, cs=p_ic, acc0=0.5)["upp"], 4)
    (0.6667, 0.6667)
    >>> [round(a, 4) for a in predict_accuracy(0.5, p_ic, p_ci, 3)]
    [0.5, 0.55, 0.585, 0.6095]
    >>> [round(a, 4) for a in predict_rounds(0.5, cl=1 - p_ci, cs=p_ic, rounds=3)]
    [0.5, 0.55, 0.585, 0.6095]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from sclab.metrics.bootstrap import draws, interval
from sclab.metrics.correction import ratio
from sclab.metrics.sampling import maj_at_k
from sclab.records import EPISODE, validate


def _rate(name: str, v: float) -> float:
    if not 0 <= v <= 1:
        raise ValueError(f"{name} must lie in [0, 1] (got {v})")
    return float(v)


def stationary(p_ic: float, p_ci: float) -> float:
    """The chain's stationary accuracy p_IC / (p_IC + p_CI); NaN when both are 0 (nothing moves)."""
    return float(ratio(_rate("p_ic", p_ic), _rate("p_ci", p_ci) + p_ic))


def to_convergence(p_ic: float, p_ci: float) -> dict:
    """01's parameters of the same chain: CL = 1 − p_CI, CS = p_IC.

    >>> to_convergence(0.2, 0.1)
    {'cl': 0.9, 'cs': 0.2}
    """
    return {"cl": round(1 - _rate("p_ci", p_ci), 12), "cs": _rate("p_ic", p_ic)}


def predict_accuracy(acc0: float, p_ic: float, p_ci: float, rounds: int) -> list[float]:
    """[Acc_0, ..., Acc_rounds] by stepping the two-state chain's distribution (wrong, right)
    through its transition matrix [[1 − p_IC, p_IC], [p_CI, 1 − p_CI]]."""
    _rate("acc0", acc0)
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0 (got {rounds})")
    T = np.array([[1 - _rate("p_ic", p_ic), p_ic], [_rate("p_ci", p_ci), 1 - p_ci]])
    dist, out = np.array([1 - acc0, acc0]), [float(acc0)]
    for _ in range(rounds):
        dist = dist @ T
        out.append(float(dist[1]))
    return out


def simulate(p_ic: float, p_ci: float, acc0: float, rounds: int, chains: int = 1, problems: int = 1,
             seed: int = 0) -> np.ndarray:
    """Boolean states (problems x chains x rounds+1), True = right: each chain starts right with
    probability acc0 and then moves by the two rates, all chains independent.

    >>> simulate(1.0, 0.0, 0.0, 2).astype(int).tolist()   # always fixed, never broken
    [[[0, 1, 1]]]
    """
    for name, v in (("acc0", acc0), ("p_ic", p_ic), ("p_ci", p_ci)):
        _rate(name, v)
    if rounds < 0 or chains < 1 or problems < 1:
        raise ValueError(f"need rounds >= 0, chains >= 1, problems >= 1 (got {rounds}, {chains}, {problems})")
    rng = np.random.default_rng(seed)
    u = rng.random((problems, chains, rounds + 1))
    states = np.empty(u.shape, bool)
    states[..., 0] = u[..., 0] < acc0
    for t in range(1, rounds + 1):
        prev = states[..., t - 1]
        states[..., t] = np.where(prev, u[..., t] >= p_ci, u[..., t] < p_ic)
    return states


def vote_simulated(states: np.ndarray, last: int) -> np.ndarray:
    """DSER's majority vote over the last `last` iterations of a problem's parallel chains, in the
    two-state model: right (1.0) when more than half of the chains x last votes are right, 0.5 on
    an exact tie, else 0.0 (one value per problem). All wrong answers count as one here; in a real
    vote wrong answers may split, so a right answer can win without a majority (`vote_last`).

    >>> vote_simulated(np.array([[[0, 1, 1], [0, 0, 1]]], bool), last=2).tolist()   # 3 of 4 votes right
    [1.0]
    """
    states = np.asarray(states, bool)
    if states.ndim != 3 or not 1 <= last <= states.shape[2]:
        raise ValueError(f"states must be problems x chains x rounds+1 and 1 <= last <= {states.shape[-1]} "
                         f"(got shape {states.shape}, last={last})")
    share = states[..., -last:].mean(axis=(1, 2))
    return np.where(share > 0.5, 1.0, np.where(share == 0.5, 0.5, 0.0))


def vote_last(df: pd.DataFrame, last: int) -> pd.Series:
    """Per problem (index problem_id): the majority vote over the extracted answers of the last
    `last` turns of all its samples (parallel chains), 1.0 when the winning answer is right
    (`sclab.metrics.maj_at_k` over all those votes; failures never win; a tie goes to the
    earliest vote). The vote reads the grade only to score the winner."""
    validate(df, ["correct", "extracted"])
    K = int(df["turn"].max())
    if not 1 <= last <= K:
        raise ValueError(f"last must satisfy 1 <= last <= {K} turns (got {last})")
    rows = df[df["turn"] > K - last].sort_values(["problem_id", "turn", "sample"])
    out = {}
    for pid, g in rows.groupby("problem_id", sort=True):
        votes = g.assign(sample=np.arange(len(g)), turn=1)
        out[pid] = maj_at_k(votes, len(votes))
    return pd.Series(out, name=f"vote_last{last}", dtype=float)


def chain_counts(df: pd.DataFrame, turns: Sequence[int] | None = None) -> pd.DataFrame:
    """Per problem (index, sorted): transitions from wrong (`from_wrong`) and how many became
    right (`w2r`), transitions from right (`from_right`) and how many became wrong (`r2w`), over
    consecutive turns t → t+1 with t+1 in `turns` (default every turn after the first), plus the
    first turn's samples (`n0`) and right answers (`c0`). Every episode must have every turn."""
    validate(df, ["correct"])
    wide = df.pivot(index=EPISODE, columns="turn", values="correct")
    if wide.isna().any().any():
        ep = wide[wide.isna().any(axis=1)].index[0]
        raise ValueError(f"problem {ep[0]!r} sample {ep[1]!r} lacks a turn: a chain needs every turn 1..K")
    ts = list(wide.columns)
    if len(ts) < 2 or ts != list(range(ts[0], ts[0] + len(ts))):
        raise ValueError(f"records need consecutive turns, at least two (got {ts})")
    steps = [t for t in ts[1:] if turns is None or t in set(turns)]
    if not steps:
        raise ValueError(f"turns={list(turns)} selects no transition; turns present: {ts}")
    c = wide.to_numpy(bool)
    a, b = c[:, [ts.index(t) - 1 for t in steps]], c[:, [ts.index(t) for t in steps]]
    per = pd.DataFrame({"from_wrong": (~a).sum(1), "w2r": (~a & b).sum(1), "from_right": a.sum(1),
                        "r2w": (a & ~b).sum(1), "n0": 1, "c0": c[:, 0]}, index=wide.index.get_level_values(0))
    return per.groupby(level=0, sort=True).sum().astype(float)


def transition_rates(df: pd.DataFrame, classes: pd.Series | dict | None = None, turns: Sequence[int] | None = None,
                     *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """p_IC, p_CI, the stationary accuracy, Acc_0, the last turn's accuracy and `gap` (the last
    turn's accuracy minus the stationary one: ~0 once the chain has mixed), pooled over the
    rounds and the problems of each class ("all", and each class of `classes`: problem_id -> class),
    each with `_lo`/`_hi` from a problem bootstrap; plus n_problems and n_transitions (index: class).

    >>> df = pd.DataFrame({"problem_id": 0, "sample": [0, 0, 0, 1, 1, 1], "turn": [1, 2, 3] * 2,
    ...                    "correct": [False, True, True, True, False, True]})
    >>> r = transition_rates(df, n_boot=10).loc["all"]; [round(float(r[k]), 4) for k in ("p_ic", "p_ci", "stationary")]
    [1.0, 0.5, 0.6667]
    """
    counts = chain_counts(df, turns)
    last = df[df["turn"] == df["turn"].max()].groupby("problem_id", sort=True)["correct"].sum().astype(float)
    counts["c_last"] = last.loc[counts.index].to_numpy()
    groups = {"all": np.ones(len(counts), bool)}
    if classes is not None:
        classes = pd.Series(classes)
        missing = counts.index.difference(classes.index)
        if len(missing):
            raise ValueError(f"classes has no class for problem {missing[0]!r}")
        cls = classes.loc[counts.index].to_numpy()
        groups |= {k: cls == k for k in sorted(set(cls), key=str)}
    rows = {}
    for name, mask in groups.items():
        c = counts[mask]
        P = len(c)
        w = np.zeros((n_boot + 1, P))
        w[0] = 1.0   # row 0: the point estimate
        np.add.at(w[1:], (np.repeat(np.arange(n_boot), P), draws(P, n_boot, seed).ravel()), 1.0)
        s = {k: w @ c[k].to_numpy() for k in c.columns}
        p_ic, p_ci = ratio(s["w2r"], s["from_wrong"]), ratio(s["r2w"], s["from_right"])
        stat, acc_last = ratio(p_ic, p_ic + p_ci), s["c_last"] / s["n0"]
        vals = {"p_ic": p_ic, "p_ci": p_ci, "stationary": stat, "acc0": s["c0"] / s["n0"], "acc_last": acc_last,
                "gap": acc_last - stat}   # measured minus predicted, paired over the same resamples
        row = {"n_problems": P, "n_transitions": int(c["from_wrong"].sum() + c["from_right"].sum())}
        for k, v in vals.items():
            row[k] = round(float(v[0]), 12)
            row[f"{k}_lo"], row[f"{k}_hi"] = interval(v[1:], alpha)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def round_accuracy(df: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Measured accuracy at every turn (index: turn) with a problem-bootstrap interval: the curve
    `predict_accuracy` is read against."""
    validate(df, ["correct"])
    per = df.pivot_table(index="problem_id", columns="turn", values="correct", aggfunc=["sum", "count"])
    right, n = per["sum"].to_numpy(float), per["count"].to_numpy(float)
    P = len(per)
    w = np.zeros((n_boot, P))
    np.add.at(w, (np.repeat(np.arange(n_boot), P), draws(P, n_boot, seed).ravel()), 1.0)
    boot = (w @ right) / (w @ n)
    out = pd.DataFrame({"acc": right.sum(0) / n.sum(0)}, index=pd.Index(per["sum"].columns, name="turn"))
    out["acc_lo"], out["acc_hi"] = np.nanquantile(boot, alpha / 2, axis=0), np.nanquantile(boot, 1 - alpha / 2, axis=0)
    return out
