"""How well a confidence signal judges attempts: AUROC, ECE, RMS calibration error and Brier
with problem-bootstrap CIs, pooled, by the error kind of the judged attempt, and within
difficulty buckets.

A pooled AUROC mixes two abilities: telling easy problems from hard ones and telling a right
attempt from a wrong one at the same problem's difficulty. `within_auroc` keeps only the second
(pairs inside one bucket, e.g. the toy's n), and `kind_auroc` asks which errors a signal can
see: right attempts against the wrong ones of one kind (slip, unsure, misconception).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"problem_id": [0, 0, 1, 1], "correct": [1, 0, 1, 0], "s": [0.9, 0.2, 0.6, 0.7],
    ...                    "n": [2, 2, 3, 3]})
    >>> within_auroc(df, "s", "n")
    0.5
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from sclab.metrics.bootstrap import draws, interval
from sclab.metrics.calibration import auroc, brier, ece, rms_calibration_error


def within_auroc(df: pd.DataFrame, signal: str, bucket: str, label: str = "correct") -> float:
    """AUROC over right/wrong pairs within each bucket, pooled by pairs (each bucket weighs its
    n_right·n_wrong pairs); NaN if no bucket has both."""
    num = den = 0.0
    for _, g in df.groupby(bucket):
        y = g[label].astype(bool).to_numpy()
        pairs = y.sum() * (~y).sum()
        if pairs:
            num += auroc(g[signal].to_numpy(), y) * pairs
            den += pairs
    return float(num / den) if den else float("nan")


def kind_auroc(df: pd.DataFrame, signal: str, kind: str, label: str = "correct", kind_col: str = "error_kind") -> float:
    """AUROC of right attempts against the wrong ones whose first error is `kind`."""
    y = df[label].astype(bool)
    sub = df[y | (~y & (df[kind_col] == kind))]
    return auroc(sub[signal].to_numpy(), sub[label].astype(bool).to_numpy())


def _metrics(df: pd.DataFrame, signal: str, label: str, prob: bool, kinds, bucket) -> dict:
    s, y = df[signal].to_numpy(dtype=float), df[label].astype(float).to_numpy()
    out = {"auroc": auroc(s, y)}
    if prob:
        out.update(ece=ece(s, y), rms=rms_calibration_error(s, y), brier=brier(s, y))
    for k in kinds:
        out[f"auroc_{k}"] = kind_auroc(df, signal, k, label)
        if prob:   # calibration on the same subset (the right attempts and the wrong ones of kind k), and the
            # confidence the signal puts in those wrong ones (an ideal judge: 0)
            wrong_k = (y == 0) & (df["error_kind"] == k).to_numpy()
            keep = (y == 1) | wrong_k
            out[f"ece_{k}"] = ece(s[keep], y[keep]) if wrong_k.any() else float("nan")
            out[f"conf_wrong_{k}"] = float(s[wrong_k].mean()) if wrong_k.any() else float("nan")
    if bucket:
        out["auroc_within"] = within_auroc(df, signal, bucket, label)
    return out


def _boots(df: pd.DataFrame, n_boot: int, seed: int) -> list[np.ndarray]:
    """Row indices of each problem resample (all of a problem's attempts move together)."""
    codes, uniq = pd.factorize(df["problem_id"], sort=True)
    members = [np.flatnonzero(codes == i) for i in range(len(uniq))]
    return [np.concatenate([members[i] for i in d]) for d in draws(len(uniq), n_boot, seed)]


def auroc_difference(df: pd.DataFrame, a: str, b: str, *, label: str = "correct", n_boot: int = 1000,
                     alpha: float = 0.05, seed: int = 0) -> dict:
    """AUROC(a) − AUROC(b) on the same attempts, paired: both signals are read on each problem
    resample (`signal_table`'s resamples for the same seed). Returns auroc_a, auroc_b, diff,
    diff_lo, diff_hi."""
    missing = [c for c in (label, "problem_id", a, b) if c not in df]
    if missing:
        raise ValueError(f"auroc_difference: columns {missing} are missing")
    x, z, y = df[a].to_numpy(float), df[b].to_numpy(float), df[label].astype(bool).to_numpy()
    lo, hi = interval([auroc(x[i], y[i]) - auroc(z[i], y[i]) for i in _boots(df, n_boot, seed)], alpha)
    return {"auroc_a": float(auroc(x, y)), "auroc_b": float(auroc(z, y)), "diff": float(auroc(x, y) - auroc(z, y)),
            "diff_lo": lo, "diff_hi": hi}


def signal_table(df: pd.DataFrame, signals: dict[str, str], *, label: str = "correct", prob: tuple[str, ...] | None = None,
                 kinds: tuple[str, ...] = (), bucket: str | None = None, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> pd.DataFrame:
    """One row per signal (name -> column): AUROC and, for probability signals (`prob`, default
    all), ECE (10 equal-width bins), RMS calibration error and Brier; AUROC against each error
    kind in `kinds` (`auroc_<kind>`) and, for probability signals, ECE on the same attempts
    (`ece_<kind>`) and the mean confidence in the wrong attempts of that kind (`conf_wrong_<kind>`);
    AUROC within `bucket`; each with `<metric>_lo` / `_hi` from resampling problems (all of a
    problem's attempts move together)."""
    missing = [c for c in [label, "problem_id", *signals.values()] + ([bucket] if bucket else []) if c not in df]
    if missing:
        raise ValueError(f"signal_table: columns {missing} are missing")
    if kinds and "error_kind" not in df:
        raise ValueError("signal_table(kinds=...): the column error_kind is missing")
    prob = tuple(signals) if prob is None else prob
    boots = _boots(df, n_boot, seed)
    rows = []
    for name, col in signals.items():
        point = _metrics(df, col, label, name in prob, kinds, bucket)
        res = [_metrics(df.iloc[b], col, label, name in prob, kinds, bucket) for b in boots]
        row = {"signal": name}
        for m, v in point.items():
            lo, hi = interval([r[m] for r in res], alpha)
            row.update({m: v, f"{m}_lo": lo, f"{m}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)
