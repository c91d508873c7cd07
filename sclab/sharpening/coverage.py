"""Coverage: how much mass the base model puts on the target response (arXiv 2412.01951).

The sharpening paper's coverage coefficient C_cov = E_x[1 / π_base(y*(x) | x)] bounds how many
samples sharpening needs: best-of-N (and SFT on its picks) can only keep y* if y* is among the
N samples, which is unlikely when N ≪ 1/π_base(y*). On the toy world π_base(y* | x) is computed
exactly by teacher-forcing the gold solution (`problem.meta["solution"]`: the clean step-by-step
text, the one correct solution the world writes) with `Generator.score` at T = 1, EOS included.

The paper's y* is the self-reward maximiser argmax_y π_base(y | x); the gold solution is the
target for "can sharpening reach the right answer". `gold_logprobs(..., targets=...)` scores
any other target (the greedy attempt: the mode's approximation) the same way.

    >>> import pandas as pd
    >>> cov = pd.DataFrame({"problem_id": ["a", "b"], "logprob": [-0.5, -5.0]})
    >>> round(float(coverage(cov).loc["all", "c_cov"]), 2)   # (e^0.5 + e^5) / 2
    75.03
    >>> undercovered(cov, 4)["undercovered"].tolist()     # 4·e^-5 = 0.027 < 1/10
    [False, True]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from sclab.metrics.bootstrap import draws
from sclab.rollout import first_turn
from sclab.tasks.base import Problem, Task


def gold_logprobs(generator, task: Task, problems: Sequence[Problem], targets: Sequence[str] | None = None,
                  batch_size: int | None = None) -> pd.DataFrame:
    """log π_base(y* | x) per problem, teacher-forced at T = 1 after the first-turn prompt:
    columns problem_id, logprob (summed over y*'s tokens with EOS), tokens, min_token_logprob
    (the least likely token of y*: where the mass is lost). `targets` defaults to each
    problem's `meta["solution"]`."""
    if not problems:
        raise ValueError("gold_logprobs: no problems given")
    if targets is None:
        lacking = [p.id for p in problems if not isinstance(p.meta.get("solution"), str)]
        if lacking:
            raise ValueError(f"gold_logprobs: problem {lacking[0]!r} has no meta['solution'] (the toy task's problems "
                             f"carry their gold solution); pass targets=[one text per problem]")
        targets = [p.meta["solution"] for p in problems]
    if len(targets) != len(problems):
        raise ValueError(f"gold_logprobs: targets must hold one text per problem ({len(problems)}), got {len(targets)}")
    scores = generator.score([first_turn(p, task) for p in problems], list(targets), batch_size=batch_size,
                             desc="coverage")
    return pd.DataFrame({"problem_id": [p.id for p in problems], "logprob": [s.total for s in scores],
                         "tokens": [s.tokens for s in scores],
                         "min_token_logprob": [min(s.token_logprobs) for s in scores]})


def _check(cov: pd.DataFrame) -> np.ndarray:
    if not isinstance(cov, pd.DataFrame) or not {"problem_id", "logprob"} <= set(cov.columns):
        raise ValueError("cov must be a table with columns problem_id and logprob (what gold_logprobs returns)")
    lp = cov["logprob"].to_numpy(float)
    if np.isnan(lp).any() or (lp > 1e-9).any():
        raise ValueError("cov: logprob must be a log-probability (<= 0, no NaN)")
    return np.minimum(lp, 0.0)


def _log_mean_inv(lp: np.ndarray, axis=None):
    """log mean(1/π) from log π, without overflow (a logsumexp of −log π)."""
    m = np.max(-lp, axis=axis, keepdims=True)
    s = np.log(np.mean(np.exp(-lp - m), axis=axis, keepdims=True)) + m
    return np.squeeze(s, axis=axis) if axis is not None else float(s.squeeze())


def coverage(cov: pd.DataFrame, classes: pd.Series | dict | None = None, *, n_boot: int = 1000, seed: int = 0,
             alpha: float = 0.05) -> pd.DataFrame:
    """C_cov = mean over problems of 1/π_base(y*|x), pooled ("all") and per class: columns
    c_cov with a problem-bootstrap interval (c_cov_lo, c_cov_hi), log_c_cov (exact in log space,
    for coverages past float range), median_inv_prob (1/π of the median problem: C_cov is a mean
    that its worst problems dominate), mean_logprob and n_problems (index: the class)."""
    lp = _check(cov)
    pid = cov["problem_id"].to_numpy()
    groups = {"all": np.ones(len(lp), bool)}
    if classes is not None:
        classes = pd.Series(classes)
        missing = pd.Index(pid).difference(classes.index)
        if len(missing):
            raise ValueError(f"classes has no class for problem {missing[0]!r}")
        cls = classes.loc[pid].to_numpy()
        groups |= {k: cls == k for k in sorted(set(cls), key=str)}
    rows = {}
    for name, mask in groups.items():
        x = lp[mask]
        boot = _log_mean_inv(x[draws(len(x), n_boot, seed)], axis=1)
        log_c = _log_mean_inv(x)
        with np.errstate(over="ignore"):   # past float range C_cov is inf; log_c_cov stays exact
            lo, hi = np.exp(np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
            rows[name] = {"c_cov": float(np.exp(log_c)), "c_cov_lo": float(lo), "c_cov_hi": float(hi),
                          "log_c_cov": float(log_c), "median_inv_prob": float(np.exp(-np.median(x))),
                          "mean_logprob": float(x.mean()), "n_problems": int(mask.sum())}
    return pd.DataFrame.from_dict(rows, orient="index")


def p_in_sample(logprob, N: int) -> np.ndarray:
    """P(y* is among N independent samples) = 1 − (1 − π)^N, stable for tiny π.

    >>> p_in_sample(np.log([0.5, 1e-12]), 2).round(12).tolist()
    [0.75, 2e-12]
    """
    if N < 1:
        raise ValueError(f"N must be >= 1 (got {N})")
    pi = np.exp(np.minimum(np.asarray(logprob, float), 0.0))
    return -np.expm1(N * np.log1p(-np.minimum(pi, 1 - 1e-16)))


def undercovered(cov: pd.DataFrame, N: int, margin: float = 10.0) -> pd.DataFrame:
    """Where N samples are too few to hold y*: per problem, inv_prob = 1/π(y*), n_times_prob = N·π
    (the expected count of y* among N samples), p_in_sample (`p_in_sample`) and `undercovered`,
    True where N ≪ 1/π, read as N·π < 1/margin (by default N is more than ten times too small)."""
    if margin <= 0:
        raise ValueError(f"margin must be > 0 (got {margin})")
    lp = _check(cov)
    if N < 1:
        raise ValueError(f"N must be >= 1 (got {N})")
    n_pi = N * np.exp(lp)
    with np.errstate(over="ignore"):
        inv = np.exp(-lp)
    return pd.DataFrame({"problem_id": cov["problem_id"].to_numpy(), "inv_prob": inv, "n_times_prob": n_pi,
                         "p_in_sample": p_in_sample(lp, N), "undercovered": n_pi < 1.0 / margin})


def coverage_by_n(cov: pd.DataFrame, Ns: Sequence[int], margin: float = 10.0,
                  classes: pd.Series | dict | None = None) -> pd.DataFrame:
    """For each N (and class, with `classes`): the share of problems `undercovered` and the mean
    P(y* among the N samples): the ceiling that coverage sets on what a selection can keep.

    >>> cov = pd.DataFrame({"problem_id": ["a", "b"], "logprob": [-0.5, -5.0]})
    >>> coverage_by_n(cov, [1, 1000])["undercovered"].tolist()
    [0.5, 0.0]
    """
    _check(cov)
    cls = None
    if classes is not None:
        classes = pd.Series(classes)
        cls = classes.loc[cov["problem_id"].to_numpy()].to_numpy()
    rows = []
    for N in Ns:
        u = undercovered(cov, int(N), margin)
        parts = {"all": np.ones(len(u), bool)}
        if cls is not None:
            parts |= {k: cls == k for k in sorted(set(cls), key=str)}
        for name, mask in parts.items():
            rows.append({"class": name, "generations": int(N), "undercovered": float(u["undercovered"][mask].mean()),
                         "p_in_sample": float(u["p_in_sample"][mask].mean()), "n_problems": int(mask.sum())})
    return pd.DataFrame(rows)
