"""Confidence intervals from a bootstrap over PROBLEMS: all rows of a problem move together
(samples and turns of one problem are not independent). One seeded set of draws (`draws`) is
shared by the generic `bootstrap_ci`, the vectorised `metrics_with_ci` and `paired_diff_ci`, so
the same seed gives the same resamples everywhere; `interval` is the percentile interval.

    >>> import pandas as pd; from sclab.metrics.bootstrap import metrics_with_ci
    >>> df = pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2], "correct": [True, True, False, True]})
    >>> m = metrics_with_ci(df, n_boot=200); m["delta"], m["delta_lo"] <= m["delta"] <= m["delta_hi"]
    (0.5, True)
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from sclab.metrics.correction import from_counts, transition_counts
from sclab.records import answer_changed, pairs, validate


def draws(n_problems: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot x P problem indices drawn with replacement (numpy's default_rng(seed))."""
    return np.random.default_rng(seed).integers(0, n_problems, size=(n_boot, n_problems))


def interval(values, alpha: float) -> tuple[float, float]:
    """Percentile interval (alpha/2, 1 - alpha/2), ignoring resamples where the metric is NaN
    (all NaN -> NaN).

    >>> interval(list(range(101)), 0.1)
    (5.0, 95.0)
    """
    values = np.asarray(values, dtype=float)
    if np.isnan(values).all(axis=0).any():
        return float("nan"), float("nan")
    lo, hi = np.nanquantile(values, [alpha / 2, 1 - alpha / 2], axis=0)
    return float(lo), float(hi)


def bootstrap_ci(df: pd.DataFrame, metric_fn: Callable[[pd.DataFrame], float], n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of metric_fn(df) over resamples of PROBLEMS with replacement: all rows of
    a problem move together, and each draw gets its own problem_id (its draw position 0..P-1;
    the original id is kept in `source_problem_id`) so a problem drawn twice counts twice.
    Builds one DataFrame per resample; for the standard metrics `metrics_with_ci` is faster."""
    validate(df, ["correct"])
    codes, uniq = pd.factorize(df["problem_id"], sort=True)
    order = np.argsort(codes, kind="stable")
    size = np.bincount(codes, minlength=len(uniq))
    start = np.cumsum(size) - size
    source = df["problem_id"].to_numpy()
    values = []
    for draw in draws(len(uniq), n_boot, seed):
        lens = size[draw]
        offset = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        rows = order[np.repeat(start[draw], lens) + offset]
        sample = df.iloc[rows].reset_index(drop=True)
        sample["source_problem_id"] = source[rows]
        sample["problem_id"] = np.repeat(np.arange(len(draw)), lens)
        values.append(metric_fn(sample))
    return interval(np.array(values), alpha)


def metrics_with_ci(df: pd.DataFrame, t1: int = 1, t2: int = 2, n_boot: int = 1000,
                    alpha: float = 0.05, seed: int = 0) -> dict:
    """Every `correction_metrics` key plus answer_changed_rate, extraction_failure_rate and
    tokens_per_problem (NaN when `extracted`/`tokens` are absent), each with `<key>_lo` and
    `<key>_hi` from a problem bootstrap (the resamples `bootstrap_ci` draws with this seed),
    plus n_problems. Vectorised: per-problem counts are computed once and resampled as
    weights, so 1000 problems x 1000 resamples takes well under a second."""
    paired = pairs(df, t1, t2, ("correct", "extracted") if "extracted" in df.columns else ("correct",))
    c = transition_counts(paired)
    missing = set(df["problem_id"]) - set(c.index)
    if missing:
        raise ValueError(f"problem {sorted(missing, key=str)[0]!r} has no records at turns {t1} and {t2}")
    draw = draws(len(c), n_boot, seed)
    w = np.bincount((draw + len(c) * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * len(c))
    w = np.vstack([np.ones(len(c)), w.reshape(n_boot, len(c))])   # row 0: the point estimate
    arrays = [c[k].to_numpy() for k in ("n", "c1", "c12", "i2c")]
    out = from_counts(*arrays, w=w)
    by_problem = df.groupby("problem_id", sort=True)
    nan = np.full(len(w), np.nan)
    if "extracted" in df.columns:
        changed = answer_changed(paired["extracted_1"], paired["extracted_2"])
        changed = pd.Series(changed).groupby(paired["problem_id"].to_numpy(), sort=True).sum()
        out["answer_changed_rate"] = (w @ changed.to_numpy(float)) / (w @ arrays[0])
        fails = df["extracted"].isna().groupby(df["problem_id"], sort=True).sum().to_numpy(float)
        out["extraction_failure_rate"] = (w @ fails) / (w @ by_problem.size().to_numpy(float))
    else:
        out["answer_changed_rate"] = out["extraction_failure_rate"] = nan
    out["tokens_per_problem"] = (w @ by_problem["tokens"].sum().to_numpy(float)) / w.sum(1) if "tokens" in df.columns else nan
    res = {"n_problems": len(c)}
    for key, v in out.items():
        res[key] = float(v[0])
        res[f"{key}_lo"], res[f"{key}_hi"] = interval(v[1:], alpha)
    return res


def paired_diff_ci(problem_id, a, b, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of mean(a) - mean(b) for paired per-row values, over problem resamples
    (the draws of `bootstrap_ci`): rows of one problem move together, a and b stay paired."""
    g = pd.DataFrame({"pid": problem_id, "n": 1.0, "a": np.asarray(a, float), "b": np.asarray(b, float)})
    s = g.groupby("pid", sort=True).sum()
    draw = draws(len(s), n_boot, seed)
    w = np.zeros((n_boot, len(s)))
    np.add.at(w, (np.repeat(np.arange(n_boot), len(s)), draw.ravel()), 1.0)
    return interval((w @ s["a"].to_numpy() - w @ s["b"].to_numpy()) / (w @ s["n"].to_numpy()), alpha)
