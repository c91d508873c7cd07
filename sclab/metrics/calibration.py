"""Calibration of a confidence against 0/1 outcomes: ECE, RMS calibration error and the Brier
score (as Kadavath et al., arXiv 2207.05221, report them), and AUROC of a score for telling right
from wrong. Plain arrays in, floats out.

    >>> from sclab.metrics.calibration import auroc
    >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
"""
from __future__ import annotations

import numpy as np


def _calib_inputs(conf, correct):
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)
    if conf.shape != correct.shape or conf.ndim != 1 or len(conf) == 0:
        raise ValueError(f"conf and correct must be 1-D, non-empty and of equal length (got {conf.shape}, {correct.shape})")
    if np.isnan(conf).any() or (conf < 0).any() or (conf > 1).any():
        raise ValueError("conf must lie in [0, 1] with no NaN")
    return conf, correct


def _bins(conf, correct, n_bins):
    """Equal-width bins with edges b/n_bins: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0] for 10
    bins (left-closed, the last also right-closed). Returns weight n_b/N, acc_b, conf_b of
    the non-empty bins."""
    conf, correct = _calib_inputs(conf, correct)
    # round before floor so that 0.3*10 = 3.0000000000000004 and 0.7*10 stay on their edge
    idx = np.minimum(np.floor(np.round(conf * n_bins, 9)).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    keep = count > 0
    acc = np.bincount(idx, correct, n_bins)[keep] / count[keep]
    mean_conf = np.bincount(idx, conf, n_bins)[keep] / count[keep]
    return count[keep] / len(conf), acc, mean_conf


def ece(conf, correct, n_bins: int = 10) -> float:
    """Expected calibration error Σ_b (n_b/N)·|acc_b − conf_b| over equal-width bins (see _bins).

    >>> round(ece([0.2, 0.25, 0.9, 0.95], [0, 1, 1, 1]), 4)  # 0.5*|0.5-0.225| + 0.5*|1-0.925|
    0.175
    """
    w, acc, c = _bins(conf, correct, n_bins)
    return float(np.sum(w * np.abs(acc - c)))


def rms_calibration_error(conf, correct, n_bins: int = 10) -> float:
    """sqrt(Σ_b (n_b/N)·(acc_b − conf_b)²), same bins as `ece`."""
    w, acc, c = _bins(conf, correct, n_bins)
    return float(np.sqrt(np.sum(w * (acc - c) ** 2)))


def brier(conf, correct) -> float:
    """Mean squared error (p − y)² of the confidences against the 0/1 outcomes."""
    conf, correct = _calib_inputs(conf, correct)
    return float(np.mean((conf - correct) ** 2))


def auroc(scores, labels) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting
    half (Mann-Whitney U with averaged ranks). NaN if only one class is present."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D and of equal length (got {s.shape}, {y.shape})")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(cnt) - (cnt - 1) / 2.0)[inv]  # average 1-based rank of each tie group
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
