"""Self-correction metrics: pure functions of a records DataFrame, with bootstrap CIs.

A record is one (problem_id, sample, turn) with at least `correct` (bool) and optionally
`extracted` (str or None, None = extraction failure), `tokens`, `time` (s), `truncated`.
Implements the transition metrics of SCoRe (arXiv 2409.12917), CL/CS/RSS exactly as the
Confidence-v.s.-Critique code computes them (arXiv 2412.19513), multi-round convergence
(arXiv 2508.16456), oracle stopping (Huang et al., arXiv 2310.01798), the calibration
metrics of Kadavath et al. (arXiv 2207.05221), pass@k (Chen et al. 2021) and maj@k.

    >>> import pandas as pd; from sclab.metrics import correction_metrics
    >>> correction_metrics(pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2], "correct": [True, True, False, True]}))["delta"]
    0.5

Ratios whose denominator is zero (CL when nothing is right at t1, CS when nothing is wrong,
RSS with Acc1 in {0, 1}, AUROC with one class) are NaN, never an exception or a silent 0.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

KEY = ["problem_id", "sample", "turn"]
REQUIRED = KEY + ["correct"]
CORRECTION_KEYS = ["acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "cl", "cs", "rss", "acc1_cct", "acc2_cct"]


# ----------------------------------------------------------------------------- validation
def _check(df: pd.DataFrame, extra: Sequence[str] = ()) -> None:
    missing = [c for c in [*REQUIRED, *extra] if c not in df.columns]
    if missing:
        raise ValueError(f"records lack column(s) {missing}; columns present: {list(df.columns)}")
    if df["correct"].isna().any():
        raise ValueError(f"`correct` has missing values (problem {df.loc[df['correct'].isna(), 'problem_id'].iloc[0]!r})")
    dup = df.duplicated(KEY)
    if dup.any():
        row = df.loc[dup, KEY].iloc[0]
        raise ValueError(f"duplicated record (problem_id, sample, turn) = {tuple(row)}: each must appear once")


def _div(num, den):
    """num/den elementwise, NaN where den == 0."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, num / np.where(den == 0, 1.0, den))


def _pairs(df: pd.DataFrame, t1: int, t2: int, cols: Sequence[str] = ("correct",)) -> pd.DataFrame:
    """One row per (problem_id, sample) with `<col>_1`, `<col>_2` for turns t1 and t2."""
    _check(df)
    if t1 == t2:
        raise ValueError(f"t1 and t2 must differ (both {t1})")
    sides = []
    for t, tag in ((t1, "1"), (t2, "2")):
        side = df.loc[df["turn"] == t, ["problem_id", "sample", *cols]]
        if side.empty:
            raise ValueError(f"no records at turn {t}; turns present: {sorted(df['turn'].unique().tolist())}")
        sides.append(side.set_index(["problem_id", "sample"]).add_suffix(f"_{tag}"))
    for (a, ta), (b, tb) in (((sides[0], t1), (sides[1], t2)), ((sides[1], t2), (sides[0], t1))):
        lost = a.index.difference(b.index)
        if len(lost):
            pid, sample = lost[0]
            raise ValueError(f"problem {pid!r} sample {sample!r} has a record at turn {ta} but none at turn {tb}")
    both = sides[0].join(sides[1], how="inner", sort=True)
    return both.reset_index()


def _counts(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per problem: n pairs, c1 right at t1, c12 right at both, i2c wrong then right."""
    c1, c2 = pairs["correct_1"].astype(bool), pairs["correct_2"].astype(bool)
    frame = pd.DataFrame({"problem_id": pairs["problem_id"], "n": 1, "c1": c1, "c12": c1 & c2, "i2c": ~c1 & c2})
    return frame.groupby("problem_id", sort=True).sum().astype(float)


# ----------------------------------------------------------------------------- correction metrics
def _from_counts(n, c1, c12, i2c, w=None) -> dict:
    """All correction metrics from per-problem count arrays (length P). `w` (B x P) holds how
    often each problem is drawn in each of B resamples; every metric is then a length-B array."""
    w = np.ones((1, len(n))) if w is None else w
    pa = c1 / n                                     # P_a: accuracy at t1 of each problem
    pb = _div(c12, c1); pb[c1 == 0] = 0.0           # P_b: stays right; 0 if never right (as released)
    pc = _div(i2c, n - c1); pc[n == c1] = 0.0       # P_c: becomes right; 0 if never wrong
    s_n, s_c1, s_i2c = w @ n, w @ c1, w @ i2c
    s_c2i = s_c1 - w @ c12
    big_n, s_pa, s_keep, s_gain = w.sum(1), w @ pa, w @ (pa * pb), w @ ((1 - pa) * pc)
    acc1, acc2 = s_pa / big_n, (s_keep + s_gain) / big_n
    d_i2c, d_c2i = s_i2c / s_n, s_c2i / s_n
    return {
        "acc_t1": s_c1 / s_n, "acc_t2": (w @ c12 + s_i2c) / s_n,
        "delta": d_i2c - d_c2i, "delta_i2c": d_i2c, "delta_c2i": d_c2i,
        "cl": _div(s_keep, s_pa), "cs": _div(s_gain, big_n - s_pa),
        "rss": _div(acc2 - acc1 ** 2, 2 * acc1 * (1 - acc1)),
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
    c = _counts(_pairs(df, t1, t2))
    out = _from_counts(*(c[k].to_numpy() for k in ("n", "c1", "c12", "i2c")))
    return {k: float(v[0]) for k, v in out.items()}


def oracle_stop(df: pd.DataFrame) -> pd.DataFrame:
    """The same records with `correct` carried forward once a sample is right: stopping with
    oracle labels (Huang et al.), i.e. the cumulative max over turns in each (problem, sample).
    Other columns (`extracted`, tokens) are left as generated."""
    _check(df)
    flat = df.reset_index(drop=True)  # positional index: safe with duplicated labels
    ran = flat.sort_values(KEY).groupby(["problem_id", "sample"], sort=False)["correct"].cummax()
    out = df.copy()
    out["correct"] = ran.sort_index().to_numpy(bool)
    return out


def turn_accuracy(df: pd.DataFrame) -> pd.Series:
    """Mean correctness at each turn (index: turn).

    >>> turn_accuracy(pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2], "correct": [True, True, False, True]})).tolist()
    [0.5, 1.0]
    """
    _check(df)
    return df.groupby("turn", sort=True)["correct"].mean().astype(float).rename("accuracy")


# ----------------------------------------------------------------------------- sampling metrics
def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021), stable product form.

    >>> round(pass_at_k(10, 3, 2), 6)  # 1 - C(7,2)/C(10,2) = 1 - 21/45
    0.533333
    """
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
    _check(df)
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
    """
    _check(df, ["extracted"])
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


# ----------------------------------------------------------------------------- answers and cost
def answer_changed_rate(df: pd.DataFrame, t1: int = 1, t2: int = 2) -> float:
    """Fraction of (problem, sample) pairs whose extracted answer differs between t1 and t2.
    An extraction failure on either side counts as changed: no answer is not the same answer."""
    _check(df, ["extracted"])
    p = _pairs(df, t1, t2, ("correct", "extracted"))
    return float(_changed(p).mean())


def _changed(p: pd.DataFrame) -> np.ndarray:
    e1, e2 = p["extracted_1"], p["extracted_2"]
    return (e1.isna() | e2.isna() | (e1 != e2)).to_numpy()


def extraction_failure_rate(df: pd.DataFrame, turn: int | None = None) -> float:
    """Fraction of records (at `turn`, or all turns when None) whose `extracted` is None."""
    _check(df, ["extracted"])
    rows = df if turn is None else df[df["turn"] == turn]
    if rows.empty:
        raise ValueError(f"no records at turn {turn}")
    return float(rows["extracted"].isna().mean())


def token_cost(df: pd.DataFrame) -> dict:
    """Tokens generated per problem, per (problem, sample) and per turn (one generation), and
    the mean per turn number in `tokens_by_turn`; the same for `time` (s) when present."""
    _check(df, ["tokens"])
    n_prob, n_samp = df["problem_id"].nunique(), len(df.groupby(["problem_id", "sample"]))
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
    length (0 = identical, 1 = nothing in common); 0.0 for two empty texts."""
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
    a = df[df.turn == t1].set_index(["problem_id", "sample"])["response"]
    b = df[df.turn == t2].set_index(["problem_id", "sample"])["response"].reindex(a.index)
    return float(np.mean([token_edit_distance(x, y) for x, y in zip(a, b)])) if len(a) else float("nan")


def truncation_rate(df: pd.DataFrame, turn: int | None = None) -> float:
    """Fraction of records (at `turn`, or all) that hit the token limit (`truncated` column)."""
    _check(df, ["truncated"])
    rows = df if turn is None else df[df["turn"] == turn]
    return float(rows["truncated"].astype(bool).mean())


# ----------------------------------------------------------------------------- calibration
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
    half (Mann-Whitney U with averaged ranks). NaN if only one class is present.

    >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D and of equal length (got {s.shape}, {y.shape})")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(cnt) - (cnt - 1) / 2.0)[inv]  # average 1-based rank of each tie group
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ----------------------------------------------------------------------------- bootstrap
def _draws(n_problems: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot x P problem indices drawn with replacement; shared by both bootstraps so the
    same seed gives the same resamples."""
    return np.random.default_rng(seed).integers(0, n_problems, size=(n_boot, n_problems))


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval, ignoring resamples where the metric is NaN (all NaN -> NaN)."""
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
    _check(df)
    codes, uniq = pd.factorize(df["problem_id"], sort=True)
    order = np.argsort(codes, kind="stable")
    size = np.bincount(codes, minlength=len(uniq))
    start = np.cumsum(size) - size
    source = df["problem_id"].to_numpy()
    values = []
    for draw in _draws(len(uniq), n_boot, seed):
        lens = size[draw]
        offset = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        rows = order[np.repeat(start[draw], lens) + offset]
        sample = df.iloc[rows].reset_index(drop=True)
        sample["source_problem_id"] = source[rows]
        sample["problem_id"] = np.repeat(np.arange(len(draw)), lens)
        values.append(metric_fn(sample))
    return _interval(np.array(values), alpha)


def metrics_with_ci(df: pd.DataFrame, t1: int = 1, t2: int = 2, n_boot: int = 1000,
                    alpha: float = 0.05, seed: int = 0) -> dict:
    """Every `correction_metrics` key plus answer_changed_rate, extraction_failure_rate and
    tokens_per_problem (NaN when `extracted`/`tokens` are absent), each with `<key>_lo` and
    `<key>_hi` from a problem bootstrap (the resamples `bootstrap_ci` draws with this seed),
    plus n_problems. Vectorised: per-problem counts are computed once and resampled as
    weights, so 1000 problems x 1000 resamples takes well under a second."""
    pairs = _pairs(df, t1, t2, ("correct", "extracted") if "extracted" in df.columns else ("correct",))
    c = _counts(pairs)
    missing = set(df["problem_id"]) - set(c.index)
    if missing:
        raise ValueError(f"problem {sorted(missing, key=str)[0]!r} has no records at turns {t1} and {t2}")
    draw = _draws(len(c), n_boot, seed)
    w = np.bincount((draw + len(c) * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * len(c))
    w = np.vstack([np.ones(len(c)), w.reshape(n_boot, len(c))])   # row 0: the point estimate
    arrays = [c[k].to_numpy() for k in ("n", "c1", "c12", "i2c")]
    out = _from_counts(*arrays, w=w)
    by_problem = df.groupby("problem_id", sort=True)
    nan = np.full(len(w), np.nan)
    if "extracted" in df.columns:
        changed = pd.Series(_changed(pairs)).groupby(pairs["problem_id"].to_numpy(), sort=True).sum()
        out["answer_changed_rate"] = (w @ changed.to_numpy(float)) / (w @ arrays[0])
        fails = df["extracted"].isna().groupby(df["problem_id"], sort=True).sum().to_numpy(float)
        out["extraction_failure_rate"] = (w @ fails) / (w @ by_problem.size().to_numpy(float))
    else:
        out["answer_changed_rate"] = out["extraction_failure_rate"] = nan
    out["tokens_per_problem"] = (w @ by_problem["tokens"].sum().to_numpy(float)) / w.sum(1) if "tokens" in df.columns else nan
    res = {"n_problems": len(c)}
    for key, v in out.items():
        res[key] = float(v[0])
        res[f"{key}_lo"], res[f"{key}_hi"] = _interval(v[1:], alpha)
    return res


# ----------------------------------------------------------------------------- multi-round
def fit_convergence(cl: float, cs: float, acc0: float) -> dict:
    """Constant-CL/CS multi-round model Acc_t = Acc_{t-1}·CL + (1-Acc_{t-1})·CS: returns
    alpha = CL - CS and the fixed point upp = CS/(1 - CL + CS) (NaN when CL = 1 and CS = 0,
    where accuracy never moves). acc0 is checked to lie in [0, 1].

    >>> {k: round(v, 4) for k, v in fit_convergence(0.9, 0.2, 0.5).items()}
    {'alpha': 0.7, 'upp': 0.6667}
    """
    for name, v in (("cl", cl), ("cs", cs), ("acc0", acc0)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must lie in [0, 1] (got {v})")
    return {"alpha": float(cl - cs), "upp": float(_div(cs, 1 - cl + cs))}


def predict_rounds(acc0: float, cl: float, cs: float, rounds: int) -> list[float]:
    """[Acc_0, Acc_1, ..., Acc_rounds] from the closed form Acc_t = Upp − alpha^t·(Upp − Acc_0)."""
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0 (got {rounds})")
    fit = fit_convergence(cl, cs, acc0)
    if np.isnan(fit["upp"]):
        return [float(acc0)] * (rounds + 1)
    return [float(fit["upp"] - fit["alpha"] ** t * (fit["upp"] - acc0)) for t in range(rounds + 1)]


__all__ = [
    "correction_metrics", "oracle_stop", "turn_accuracy", "pass_at_k", "pass_at_k_df", "maj_at_k",
    "answer_changed_rate", "extraction_failure_rate", "token_cost", "truncation_rate",
    "ece", "rms_calibration_error", "brier", "auroc", "bootstrap_ci", "metrics_with_ci",
    "fit_convergence", "predict_rounds",
]
