"""Best-of-N by self-reward, exactly, beside maj@k, pass@k, greedy and the T = 1 mean.

Inference-time sharpening (Huang, Block, Foster et al., arXiv 2412.01951): draw N samples and
keep the one with the highest self-reward r(y) = log π_base(y | x). From n ≥ N samples per
problem the expected accuracy of best-of-N is computed exactly, not by drawing subsets: sort
the n rewards; a group of m tied samples with a samples strictly above it holds the pick of a
uniform random N-subset with probability

    P(group) = [C(n − a, N) − C(n − a − m, N)] / C(n, N)

(no higher sample drawn, at least one of the group drawn), shared equally by its m members
(ties broken uniformly). Without ties, sample i of the sorted order gets C(n − 1 − i, N − 1) /
C(n, N). `pick_weights` gives these probabilities; best-of-N accuracy is Σ_j P(j picked)·correct_j,
the unbiased estimate of best-of-N over fresh samples. The weights read the rewards only: no
grade and no gold answer enters a selection (that would be pass@N).

`curves` sets every method side by side per problem and bootstraps over problems (one set of
draws, `sclab.metrics.bootstrap.draws`, so the differences to the T = 1 mean and to greedy are
paired): best-of-N by the summed self-reward, its length-normalised ablation, maj@k voted over
random k-subsets of the n samples (`sclab.metrics.maj_at_k`, estimator "bootstrap": not the first
k), unbiased pass@k (`sclab.metrics.pass_at_k`: an oracle bound, it reads the grade), each against
generations N and generated tokens (N × the problem's mean tokens per sample; rescoring is one
forward pass over those tokens, no generation). `pick_kinds` says which error kinds best-of-N's
picks still carry.

    >>> import numpy as np
    >>> pick_weights([0.0, -1.0, -2.0], 2).round(4).tolist()   # top of a random pair: 2/3, 1/3, 0
    [0.6667, 0.3333, 0.0]
    >>> pick_weights([-1.0, -1.0, -3.0], 2).round(4).tolist()  # the tie shares 1 - C(1,2)/C(3,2)
    [0.5, 0.5, 0.0]
"""
from __future__ import annotations

from math import comb
from typing import Sequence

import numpy as np
import pandas as pd

from sclab.metrics.bootstrap import draws
from sclab.metrics.sampling import maj_at_k, pass_at_k
from sclab.records import validate

# selection methods: the reward column each ranks by (sclab.sharpening.pool adds both). On the toy
# world every well-formed attempt at a problem has the same length (5 tokens a line, 2n lines), so
# the two rank a problem's samples alike (measured: equal curves, 200 problems x 16 samples); they
# part where lengths vary (malformed or truncated attempts here, any real model)
REWARDS = {"best-of-N": "self_reward", "best-of-N (length-normalised)": "self_reward_mean"}
METHODS = (*REWARDS, "maj@k", "pass@k", "T=1 mean", "greedy")


def pick_weights(rewards, N: int) -> np.ndarray:
    """P(sample j is the best-of-N pick) when N of the n samples are drawn without replacement
    and the highest reward wins, ties broken uniformly; sums to 1.

    >>> pick_weights([3.0, 1.0, 2.0], 1).tolist()   # N = 1: a uniform sample
    [0.3333333333333333, 0.3333333333333333, 0.3333333333333333]
    """
    r = np.asarray(rewards, dtype=float)
    n = len(r)
    if r.ndim != 1 or n == 0:
        raise ValueError(f"rewards must be a non-empty 1-d sequence (got shape {r.shape})")
    if np.isnan(r).any():
        raise ValueError("rewards contain NaN: every sample needs a self-reward (sclab.sharpening.sample_pool)")
    if not 1 <= N <= n:
        raise ValueError(f"N must satisfy 1 <= N <= n = {n} samples (got N={N})")
    values, inverse, counts = np.unique(-r, return_inverse=True, return_counts=True)  # best first
    above = np.cumsum(counts) - counts
    total = comb(n, N)
    group = np.array([(comb(n - a, N) - comb(n - a - m, N)) / total for a, m in zip(above, counts)])
    return (group / counts)[inverse]


def picks(samples: pd.DataFrame, N: int, reward: str = "self_reward", turn: int = 1) -> pd.Series:
    """Every sample's probability of being a problem's best-of-N pick (index: the rows of
    `samples` at `turn`). It reads `problem_id` and `reward` only."""
    rows = _turn(samples, reward, turn)
    out = pd.Series(0.0, index=rows.index, name=f"p_pick@{N}")
    for _, g in rows.groupby("problem_id", sort=True):
        out[g.index] = pick_weights(g[reward].to_numpy(float), N)
    return out


def _turn(samples: pd.DataFrame, reward: str, turn: int) -> pd.DataFrame:
    validate(samples, ["correct", reward], "samples")
    rows = samples[samples["turn"] == turn]
    if rows.empty:
        raise ValueError(f"samples have no records at turn {turn}; turns present: "
                         f"{sorted(samples['turn'].unique().tolist())}")
    if rows[reward].isna().any():
        pid = rows.loc[rows[reward].isna(), "problem_id"].iloc[0]
        raise ValueError(f"samples: `{reward}` is missing for problem {pid!r} (sample_pool scores every sample)")
    return rows


def default_ns(samples: pd.DataFrame, turn: int = 1) -> list[int]:
    """N = 1, 2, 4, ... up to the fewest samples any problem has."""
    n = int(samples[samples["turn"] == turn].groupby("problem_id").size().min())
    return [2 ** i for i in range(n.bit_length()) if 2 ** i <= n]


def _check_ns(Ns, n_min: int) -> list[int]:
    Ns = sorted({int(N) for N in Ns})
    if not Ns or Ns[0] < 1 or Ns[-1] > n_min:
        raise ValueError(f"Ns must be generation counts in 1..{n_min} (the fewest samples of any problem), got {Ns}")
    return Ns


def per_problem(samples: pd.DataFrame, Ns: Sequence[int] | None = None, greedy: pd.DataFrame | None = None,
                turn: int = 1, maj_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Each problem's expected accuracy under every method and budget (index problem_id,
    columns (method, N)), plus ("tokens", N): the generated tokens that budget costs. maj@k
    averages `maj_boot` random k-subsets per problem (seeded by `seed` and the problem's position)."""
    rows = _turn(samples, "self_reward", turn)
    validate(rows, ["extracted", "tokens", *REWARDS.values()], "samples")
    groups = list(rows.groupby("problem_id", sort=True))
    Ns = _check_ns(default_ns(rows, turn) if Ns is None else Ns, min(len(g) for _, g in groups))
    out = {}
    for i, (pid, g) in enumerate(groups):
        c, n = g["correct"].to_numpy(float), len(g)
        v = {("T=1 mean", 1): c.mean(), ("tokens", 1): float(g["tokens"].mean())}
        for N in Ns:
            for method, col in REWARDS.items():
                v[(method, N)] = float(pick_weights(g[col].to_numpy(float), N) @ c)
            v[("maj@k", N)] = maj_at_k(g, N, turn=turn, estimator="bootstrap", seed=seed * 1_000_003 + i,
                                       n_boot=maj_boot)
            v[("pass@k", N)] = pass_at_k(n, int(c.sum()), N)
            v[("tokens", N)] = N * float(g["tokens"].mean())
        out[pid] = v
    table = pd.DataFrame.from_dict(out, orient="index").sort_index()
    if greedy is not None:
        g = _turn(greedy, "correct", turn).drop_duplicates("problem_id").set_index("problem_id")
        missing = table.index.difference(g.index)
        if len(missing):
            raise ValueError(f"greedy records lack problem {missing[0]!r} (greedy_pool on the same problems)")
        table[("greedy", 1)] = g.loc[table.index, "correct"].to_numpy(float)
        table[("greedy tokens", 1)] = g.loc[table.index, "tokens"].to_numpy(float)
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["method", "generations"])
    return table


def _boot(values: np.ndarray, n_boot: int, seed: int, alpha: float):
    """Point means of the columns of a P x M matrix and their percentile bounds over problem resamples."""
    P = len(values)
    d = draws(P, n_boot, seed)
    w = np.zeros((n_boot, P))
    np.add.at(w, (np.repeat(np.arange(n_boot), P), d.ravel()), 1.0)
    boot = w @ values / P
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return values.mean(0), lo, hi


def curves(samples: pd.DataFrame, greedy: pd.DataFrame | None = None, Ns: Sequence[int] | None = None,
           classes: pd.Series | dict | None = None, *, turn: int = 1, n_boot: int = 1000, seed: int = 0,
           alpha: float = 0.05, maj_boot: int = 200) -> pd.DataFrame:
    """Accuracy of every method (`METHODS`) against generations and tokens, with problem-bootstrap
    CIs: one row per (class, method, generations) with `acc` and its `_lo`/`_hi`, `vs_mean`
    (minus the T = 1 mean, paired) and, with `greedy`, `vs_greedy`, each with bounds, `tokens`
    (generated tokens per problem) and `n_problems`. Greedy and the T = 1 mean are one
    generation each. `classes` (problem_id -> class, e.g. `problem_classes` or `greedy_kind`)
    adds a row set per class beside "all".

    >>> df = pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": [0, 1, 0, 1], "turn": 1, "tokens": 10,
    ...                    "correct": [True, False, False, True], "extracted": ["1", "2", "3", "4"],
    ...                    "self_reward": [-1.0, -2.0, -2.0, -1.0], "self_reward_mean": [-3.0, -1.0, -1.0, -3.0]})
    >>> c = curves(df, n_boot=100).set_index(["method", "generations"])
    >>> c.loc[("best-of-N", 2), ["acc", "vs_mean", "tokens"]].tolist()
    [1.0, 0.5, 20.0]
    >>> float(c.loc[("best-of-N (length-normalised)", 2), "acc"]), float(c.loc[("T=1 mean", 1), "acc"])
    (0.0, 0.5)
    """
    table = per_problem(samples, Ns, greedy, turn, maj_boot, seed)
    if classes is None:
        groups = {"all": table}
    else:
        classes = pd.Series(classes)
        missing = table.index.difference(classes.index)
        if len(missing):
            raise ValueError(f"classes has no class for problem {missing[0]!r}")
        cls = classes.loc[table.index]
        groups = {"all": table, **{k: table[cls.to_numpy() == k] for k in sorted(cls.unique(), key=str)}}
    order = {m: i for i, m in enumerate(METHODS)}
    acc_cols = sorted((c for c in table.columns if c[0] in METHODS), key=lambda c: (order[c[0]], c[1]))
    rows = []
    for name, t in groups.items():
        vals = t[acc_cols].to_numpy(float)
        ref = {m: t[(m, 1)].to_numpy(float)[:, None] for m in ("T=1 mean", "greedy") if (m, 1) in t.columns}
        stats = {"acc": _boot(vals, n_boot, seed, alpha)}
        for tag, m in (("vs_mean", "T=1 mean"), ("vs_greedy", "greedy")):
            if m in ref:
                stats[tag] = _boot(vals - ref[m], n_boot, seed, alpha)
        for j, (method, N) in enumerate(acc_cols):
            tok = ("greedy tokens", 1) if method == "greedy" else ("tokens", N)
            row = {"class": name, "method": method, "generations": N, "n_problems": len(t),
                   "tokens": float(t[tok].mean())}
            for tag, (point, lo, hi) in stats.items():
                row[tag], row[f"{tag}_lo"], row[f"{tag}_hi"] = float(point[j]), float(lo[j]), float(hi[j])
            rows.append(row)
    return pd.DataFrame(rows)


def pick_kinds(samples: pd.DataFrame, Ns: Sequence[int] | None = None, greedy: pd.DataFrame | None = None,
               reward: str = "self_reward", *, turn: int = 1, n_boot: int = 1000, seed: int = 0,
               alpha: float = 0.05) -> pd.DataFrame:
    """Which errors best-of-N's picks carry: for each N, the expected share of picks whose first
    wrong line is of each `error_kind` ("none" for a clean attempt), with problem-bootstrap bounds;
    N = 1 is the T = 1 sample, and `greedy` adds the greedy attempt's shares (generations 1).
    One row per (method, generations, kind): share, share_lo, share_hi."""
    rows_t = _turn(samples, reward, turn)
    validate(rows_t, ["error_kind"], "samples")
    kind = rows_t["error_kind"].astype(object).where(rows_t["error_kind"].notna(), "none")
    kinds = sorted(kind.unique(), key=lambda k: (k != "none", str(k)))
    groups = list(rows_t.assign(_kind=kind).groupby("problem_id", sort=True))
    Ns = _check_ns(default_ns(rows_t, turn) if Ns is None else Ns, min(len(g) for _, g in groups))
    cols, vals = [], []
    for N in Ns:
        cols += [("best-of-N", N, k) for k in kinds]
    for _, g in groups:
        onehot = (g["_kind"].to_numpy()[:, None] == np.array(kinds)[None, :]).astype(float)
        vals.append(np.concatenate([pick_weights(g[reward].to_numpy(float), N) @ onehot for N in Ns]))
    vals = np.array(vals)
    if greedy is not None:
        g = _turn(greedy, "correct", turn).drop_duplicates("problem_id").set_index("problem_id")
        gk = g["error_kind"].astype(object).where(g["error_kind"].notna(), "none")
        gk = gk.loc[[pid for pid, _ in groups]].to_numpy()
        kinds_g = sorted(set(kinds) | set(gk), key=lambda k: (k != "none", str(k)))
        cols += [("greedy", 1, k) for k in kinds_g]
        vals = np.hstack([vals, (gk[:, None] == np.array(kinds_g)[None, :]).astype(float)])
    point, lo, hi = _boot(vals, n_boot, seed, alpha)
    return pd.DataFrame([{"method": m, "generations": N, "kind": k, "share": float(p), "share_lo": float(a),
                          "share_hi": float(b)} for (m, N, k), p, a, b in zip(cols, point, lo, hi)])
