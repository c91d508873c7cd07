"""Correction metrics: how the answers move from one attempt to the next, and what they cost.

The transition metrics of SCoRe (Kumar et al., arXiv 2409.12917): Acc@t1, Acc@t2, Δ, Δi→c, Δc→i;
CL/CS/RSS exactly as the Confidence-v.s.-Critique code computes them (Yang et al., arXiv
2412.19513); oracle stopping (Huang et al., arXiv 2310.01798); the answer-changed rate, extraction
failures, token cost, truncation and edit distance. Pure functions of a records table (`sclab.records`).

    >>> import pandas as pd; from sclab.metrics.correction import correction_metrics
    >>> correction_metrics(pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2], "correct": [True, True, False, True]}))["delta"]
    0.5
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from sclab.records import EPISODE, KEY, answer_changed, pairs, validate

CORRECTION_KEYS = ["acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "cl", "cs", "rss", "acc1_cct", "acc2_cct"]


def ratio(num, den):
    """num/den elementwise, NaN where den == 0 (a 0-d array for scalars: wrap in float()).

    >>> float(ratio(1, 4)), float(ratio(1, 0))
    (0.25, nan)
    """
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, num / np.where(den == 0, 1.0, den))


def transition_counts(paired: pd.DataFrame) -> pd.DataFrame:
    """Per problem (index, sorted): n pairs, c1 right at t1, c12 right at both, i2c wrong then
    right, from `sclab.records.pairs` output."""
    c1, c2 = paired["correct_1"].astype(bool), paired["correct_2"].astype(bool)
    frame = pd.DataFrame({"problem_id": paired["problem_id"], "n": 1, "c1": c1, "c12": c1 & c2, "i2c": ~c1 & c2})
    return frame.groupby("problem_id", sort=True).sum().astype(float)


def from_counts(n, c1, c12, i2c, w=None) -> dict:
    """All correction metrics from per-problem count arrays (length P). `w` (B x P) holds how
    often each problem is drawn in each of B resamples; every metric is then a length-B array."""
    w = np.ones((1, len(n))) if w is None else w
    pa = c1 / n                                     # P_a: accuracy at t1 of each problem
    pb = ratio(c12, c1); pb[c1 == 0] = 0.0          # P_b: stays right; 0 if never right (as released)
    pc = ratio(i2c, n - c1); pc[n == c1] = 0.0      # P_c: becomes right; 0 if never wrong
    s_n, s_c1, s_i2c = w @ n, w @ c1, w @ i2c
    s_c2i = s_c1 - w @ c12
    big_n, s_pa, s_keep, s_gain = w.sum(1), w @ pa, w @ (pa * pb), w @ ((1 - pa) * pc)
    acc1, acc2 = s_pa / big_n, (s_keep + s_gain) / big_n
    d_i2c, d_c2i = s_i2c / s_n, s_c2i / s_n
    return {
        "acc_t1": s_c1 / s_n, "acc_t2": (w @ c12 + s_i2c) / s_n,
        "delta": d_i2c - d_c2i, "delta_i2c": d_i2c, "delta_c2i": d_c2i,
        "cl": ratio(s_keep, s_pa), "cs": ratio(s_gain, big_n - s_pa),
        "rss": ratio(acc2 - acc1 ** 2, 2 * acc1 * (1 - acc1)),
        "acc1_cct": acc1, "acc2_cct": acc2,
    }


def correction_metrics(df: pd.DataFrame, t1: int = 1, t2: int = 2) -> dict:
    """Transition metrics from turn t1 to turn t2.

    SCoRe's acc_t1, acc_t2, delta, delta_i2c, delta_c2i are fractions of ALL (problem, sample)
    pairs, so delta == delta_i2c - delta_c2i exactly. cl, cs, rss, acc1_cct, acc2_cct follow
    the Confidence-v.s.-Critique code: per-problem P_a, P_b, P_c, then CL = ΣP_a·P_b/ΣP_a,
    CS = Σ(1-P_a)·P_c/(N-ΣP_a), RSS = (Acc2-Acc1²)/(2·Acc1·(1-Acc1)), NaN where a denominator
    is 0. acc1_cct == acc_t1 when every problem has the same number of samples.

    >>> df = pd.DataFrame({"problem_id": [0]*4 + [1]*4, "sample": [0, 0, 1, 1]*2, "turn": [1, 2]*4,
    ...                    "correct": [1, 1, 1, 0, 0, 1, 0, 0]}).astype({"correct": bool})
    >>> m = correction_metrics(df); m["delta_i2c"], m["delta_c2i"], m["cl"], m["cs"], m["rss"]
    (0.25, 0.25, 0.5, 0.5, 0.5)
    """
    c = transition_counts(pairs(df, t1, t2))
    out = from_counts(*(c[k].to_numpy() for k in ("n", "c1", "c12", "i2c")))
    return {k: float(v[0]) for k, v in out.items()}


def oracle_stop(df: pd.DataFrame) -> pd.DataFrame:
    """The same records with `correct` carried forward once a sample is right: stopping with
    oracle labels (Huang et al.), i.e. the cumulative max over turns in each (problem, sample).
    Other columns (`extracted`, tokens) are left as generated."""
    validate(df, ["correct"])
    flat = df.reset_index(drop=True)  # positional index: safe with duplicated labels
    ran = flat.sort_values(KEY).groupby(EPISODE, sort=False)["correct"].cummax()
    out = df.copy()
    out["correct"] = ran.sort_index().to_numpy(bool)
    return out


def turn_accuracy(df: pd.DataFrame) -> pd.Series:
    """Mean correctness at each turn (index: turn).

    >>> turn_accuracy(pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2], "correct": [True, True, False, True]})).tolist()
    [0.5, 1.0]
    """
    validate(df, ["correct"])
    return df.groupby("turn", sort=True)["correct"].mean().astype(float).rename("accuracy")


# ----------------------------------------------------------------------------- answers and cost
def answer_changed_rate(df: pd.DataFrame, t1: int = 1, t2: int = 2) -> float:
    """Fraction of (problem, sample) pairs whose extracted answer changed between t1 and t2
    (`sclab.records.answer_changed`: an extraction failure against an answer is a change,
    two failures are not)."""
    p = pairs(df, t1, t2, ("correct", "extracted"))
    return float(answer_changed(p["extracted_1"], p["extracted_2"]).mean())


def extraction_failure_rate(df: pd.DataFrame, turn: int | None = None) -> float:
    """Fraction of records (at `turn`, or all turns when None) whose `extracted` is None."""
    validate(df, ["correct", "extracted"])
    rows = df if turn is None else df[df["turn"] == turn]
    if rows.empty:
        raise ValueError(f"no records at turn {turn}")
    return float(rows["extracted"].isna().mean())


def token_cost(df: pd.DataFrame) -> dict:
    """Tokens generated per problem, per (problem, sample) and per turn (one generation), and
    the mean per turn number in `tokens_by_turn`; the same for `time` (s) when present."""
    validate(df, ["correct", "tokens"])
    n_prob, n_samp = df["problem_id"].nunique(), len(df.groupby(EPISODE))
    out = {}
    for col in ("tokens", "time"):
        if col in df.columns:
            total = float(df[col].sum())
            out |= {f"{col}_total": total, f"{col}_per_problem": total / n_prob,
                    f"{col}_per_sample": total / n_samp, f"{col}_per_turn": total / len(df),
                    f"{col}_by_turn": df.groupby("turn", sort=True)[col].mean().astype(float).to_dict()}
    return out


def token_edit_distance(a: str, b: str) -> float:
    """Levenshtein distance between the whitespace tokens of two texts, divided by the longer
    length (0 = identical, 1 = nothing in common); 0.0 for two empty texts.

    >>> token_edit_distance("1 +2 = 3", "1 +2 = 4")
    0.25
    """
    x, y = (a or "").split(), (b or "").split()
    if not x and not y:
        return 0.0
    prev = list(range(len(y) + 1))
    for i, tx in enumerate(x, 1):
        cur = [i]
        for j, ty in enumerate(y, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (tx != ty)))
        prev = cur
    return prev[-1] / max(len(x), len(y))


def edit_distance_rate(df: pd.DataFrame, t1: int = 1, t2: int = 2) -> float:
    """Mean normalised token edit distance between each sample's attempts t1 and t2 (needs a
    `response` column): how much of the text the second turn rewrote."""
    p = pairs(df, t1, t2, ("response",), sort=False)  # the table's order: the mean's float sum as before
    return float(np.mean([token_edit_distance(x, y) for x, y in zip(p["response_1"], p["response_2"])]))


def truncation_rate(df: pd.DataFrame, turn: int | None = None) -> float:
    """Fraction of records (at `turn`, or all) that hit the token limit (`truncated` column)."""
    validate(df, ["correct", "truncated"])
    rows = df if turn is None else df[df["turn"] == turn]
    return float(rows["truncated"].astype(bool).mean())
