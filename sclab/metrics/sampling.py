"""Sampling metrics over several samples of one turn: unbiased pass@k (Chen et al. 2021,
arXiv 2107.03374) and maj@k, the majority vote over extracted answers (as lm-eval counts it).

    >>> from sclab.metrics.sampling import pass_at_k
    >>> round(pass_at_k(10, 3, 2), 6)  # 1 - C(7,2)/C(10,2) = 1 - 21/45
    0.533333
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from sclab.records import validate


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021), stable product form."""
    if not 0 <= c <= n:
        raise ValueError(f"c must satisfy 0 <= c <= n (got c={c}, n={n})")
    if not 1 <= k <= n:
        raise ValueError(f"k must satisfy 1 <= k <= n (got k={k}, n={n})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _by_problem(df: pd.DataFrame, turn: int):
    rows = df[df["turn"] == turn]
    if rows.empty:
        raise ValueError(f"no records at turn {turn}; turns present: {sorted(df['turn'].unique().tolist())}")
    return rows.sort_values(["problem_id", "sample"]).groupby("problem_id", sort=True)


def pass_at_k_df(df: pd.DataFrame, k: int, turn: int = 1) -> float:
    """pass@k at `turn`, averaged over problems (each problem's n = its samples at that turn)."""
    validate(df, ["correct"])
    vals = []
    for pid, g in _by_problem(df, turn):
        if k > len(g):
            raise ValueError(f"k={k} exceeds the {len(g)} samples of problem {pid!r} at turn {turn}")
        vals.append(pass_at_k(len(g), int(g["correct"].sum()), k))
    return float(np.mean(vals))


def _vote(codes: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Majority vote per row of `codes` (B x k answer ids, -1 = extraction failure). Failures
    never win; ties go to the first occurrence (argmax takes the first maximum). The winner is
    right if any of its rows is right; a row with only failures is wrong."""
    votes = (codes[:, :, None] == codes[:, None, :]).sum(-1)
    votes[codes < 0] = 0
    win = votes.argmax(1)
    has = votes.max(1) > 0
    winner = codes[np.arange(len(codes)), win]
    return has & ((codes == winner[:, None]) & right).any(1)


def maj_at_k(df: pd.DataFrame, k: int, turn: int = 1, estimator: str = "first", seed: int = 0, n_boot: int = 200) -> float:
    """maj@k at `turn`: majority vote over the exact `extracted` strings of k samples per problem.

    "first" votes over the first k samples by `sample`, as lm-eval does; "bootstrap" averages
    over `n_boot` random size-k subsets (without replacement, kept in sample order so ties
    still go to the earliest sample). Extraction failures never win a vote.

    >>> df = pd.DataFrame({"problem_id": 0, "sample": range(3), "turn": 1, "correct": [False, True, True],
    ...                    "extracted": ["4", "7", "7"]})
    >>> maj_at_k(df, 3), maj_at_k(df, 1)
    (1.0, 0.0)
    """
    validate(df, ["correct", "extracted"])
    if estimator not in ("first", "bootstrap"):
        raise ValueError(f"unknown estimator {estimator!r}; valid: 'first', 'bootstrap'")
    if k < 1:
        raise ValueError(f"k must be >= 1 (got {k})")
    rng = np.random.default_rng(seed)
    vals = []
    for pid, g in _by_problem(df, turn):
        n = len(g)
        if k > n:
            raise ValueError(f"k={k} exceeds the {n} samples of problem {pid!r} at turn {turn}")
        ext = g["extracted"]
        codes = np.where(ext.isna(), -1, pd.factorize(ext)[0])
        right = g["correct"].to_numpy(bool)
        if estimator == "first":
            idx = np.arange(k)[None, :]
        else:
            idx = np.sort(np.argsort(rng.random((n_boot, n)), axis=1)[:, :k], axis=1)
        vals.append(_vote(codes[idx], right[idx]).mean())
    return float(np.mean(vals))
