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


def reliability(conf, correct, n_bins: int = 10) -> dict:
    """The reliability diagram's points: per non-empty bin (as `ece`'s), its weight, accuracy and
    mean confidence."""
    w, acc, c = _bins(conf, correct, n_bins)
    return {"weight": w, "accuracy": acc, "confidence": c}


def platt(scores, correct, iters: int = 50) -> tuple[float, float]:
    """Platt scaling: (a, b) of P(correct) = sigmoid(a·score + b), fitted by Newton's method on
    the log-loss (a few lines, so that a raw score such as a log-probability can be calibrated on
    training samples before its ECE means anything).

    >>> a, b = platt([0.0, 1.0, 2.0, 3.0], [0, 1, 0, 1]); a > 0
    True
    """
    x, y = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("platt: scores and correct must be 1-D, of equal length >= 2")
    mu, sd = x.mean(), x.std() or 1.0
    z = (x - mu) / sd
    X = np.stack([z, np.ones_like(z)], 1)
    w = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X @ w))
        H = X.T @ (X * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)   # a tiny ridge keeps separable data finite
        step = np.linalg.solve(H, X.T @ (p - y))
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0] / sd), float(w[1] - w[0] * mu / sd)


def apply_platt(scores, ab: tuple[float, float]) -> np.ndarray:
    a, b = ab
    return 1 / (1 + np.exp(-(a * np.asarray(scores, dtype=float) + b)))


def selective_curve(conf, correct, coverages=None) -> dict:
    """Selective answering: answer only the most confident fraction c of the items (`conf`: any
    score, higher = more confident); the accuracy
    of the answered ones at each coverage c (ties broken by order, after a stable sort). Also the
    area under the accuracy-coverage curve (`aurc_acc`, higher is better; the no-signal line is
    the overall accuracy).

    >>> selective_curve([0.9, 0.1, 0.8, 0.2], [1, 0, 1, 1], [0.5, 1.0])["accuracy"]
    [1.0, 0.75]
    """
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)
    if conf.shape != correct.shape or conf.ndim != 1 or len(conf) == 0 or np.isnan(conf).any():
        raise ValueError(f"selective_curve: conf and correct must be 1-D, non-empty, of equal length and conf free of "
                         f"NaN (got {conf.shape}, {correct.shape}); conf may be any score, not only a probability")
    order = np.argsort(-conf, kind="stable")
    hits = np.cumsum(correct[order]) / np.arange(1, len(conf) + 1)
    cov = np.linspace(0.05, 1.0, 20) if coverages is None else np.asarray(coverages, dtype=float)
    k = np.maximum(1, np.round(cov * len(conf)).astype(int))
    return {"coverage": [float(c) for c in cov], "accuracy": [float(hits[i - 1]) for i in k],
            "aurc_acc": float(hits.mean())}
