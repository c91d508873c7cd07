"""Comparing trained methods on the same held-out problems, and sequential vs parallel at equal budget.

`Evaluations` holds what a comparison notebook needs of every method it trains (SCoRe, STaR,
Pair-SFT, DPO, ...): two-attempt episodes on the same problems with the same strategy and
sampling, their metrics with CIs (`sclab.probes.evaluate_model`), the records and the
wall time, and one table over any subset of methods. `equal_budget` is SCoRe's inference-time
comparison (arXiv 2409.12917, Fig. 1 right): K generations as K/2 two-attempt episodes with a
majority vote over attempt 2, against K independent samples with a majority vote, each maj@k
with a problem-bootstrap CI.

    >>> import pandas as pd
    >>> seq = pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2],
    ...                     "correct": [False, True, True, True], "extracted": ["1", "2", "3", "3"]})
    >>> par = pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": [0, 1, 0, 1], "turn": 1,
    ...                     "correct": [False, False, True, False], "extracted": ["1", "1", "3", "4"]})
    >>> equal_budget(seq, par, 2, n_boot=50).loc[2, ["sequential", "parallel", "difference"]].tolist()
    [1.0, 0.5, 0.5]
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from sclab.probes import evaluate_model
from sclab.metrics import maj_at_k
from sclab.plots import ci_table

# the columns of a methods table: transitions, the keep/fix split and the fresh-sample comparison
ROW = ["acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "answer_changed_rate", "keep_right", "fix_wrong",
       "acc_parallel", "seq_minus_parallel"]


class Evaluations:
    """Every method evaluated alike: `evaluate(name, model)` runs and scores its episodes.

    `results[name]` holds its metrics, `records[name]` its records table, `timing["eval <name>"]`
    the seconds its evaluation took (callers add their training times to the same dict)."""

    def __init__(self, tokenizer, task, problems: Sequence, strategy: str, params, *, n_boot: int = 1000,
                 seed: int = 0, batch_size: int = 64):
        self.tokenizer, self.task, self.problems, self.strategy, self.params = tokenizer, task, problems, strategy, params
        self.n_boot, self.seed, self.batch_size = n_boot, seed, batch_size
        self.results: dict[str, dict] = {}
        self.records: dict[str, pd.DataFrame] = {}
        self.timing: dict[str, float] = {}

    def evaluate(self, name: str, model, probes: bool = False) -> dict:
        """Episodes of `model` on the problems, with every metric and its CI; `probes=True` adds the
        gold probe and the context swap (toy world only: they need its clean solutions)."""
        t0 = time.time()
        records, metrics = evaluate_model(model, self.tokenizer, self.task, self.problems, self.strategy, self.params,
                                          n_boot=self.n_boot, seed=self.seed, batch_size=self.batch_size,
                                          probes=probes and self.task.dialect == "toy")
        self.results[name], self.records[name] = metrics, records
        self.timing[f"eval {name}"] = time.time() - t0
        return metrics

    def table(self, names: Sequence[str], keys: Sequence[str] = ROW) -> pd.DataFrame:
        """One row per method: the values of `keys`, with the CIs of Δ and Δc→i."""
        return ci_table({n: self.results[n] for n in names}, keys, ci=("delta", "delta_c2i"))


def _votes_by_problem(records: pd.DataFrame, k: int, turn: int) -> pd.Series:
    """Each problem's maj@k outcome (1 right, 0 wrong); maj@k is their mean."""
    return pd.Series({pid: maj_at_k(g, k, turn=turn) for pid, g in records.groupby("problem_id", sort=True)})


def equal_budget(sequential: pd.DataFrame, parallel: pd.DataFrame, k_max: int, *, n_boot: int = 1000,
                 seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """maj@k at equal generation budgets k = 2, 4, ..., k_max, indexed by k ("generations").

    `sequential`: two-attempt episodes, k_max/2 samples per problem, voted over attempt 2 (k/2
    votes at budget k); `parallel`: k_max first attempts per problem, voted over k of them. The
    columns `sequential`, `parallel` and `difference` (sequential − parallel) carry `_lo`/`_hi`
    bounds from one problem bootstrap shared by both sides (the difference is paired)."""
    if k_max < 2 or k_max % 2:
        raise ValueError(f"k_max must be an even number >= 2 (k/2 episodes against k samples), got {k_max}")
    rng = np.random.default_rng(seed)
    draws = None
    rows = []
    for k in range(2, k_max + 1, 2):
        seq_votes, par_votes = _votes_by_problem(sequential, k // 2, 2), _votes_by_problem(parallel, k, 1)
        if not seq_votes.index.equals(par_votes.index):
            raise ValueError("sequential and parallel records must hold the same problems")
        if draws is None:
            # resample the per-problem outcomes (vectorised): sclab.metrics.bootstrap_ci would rebuild a
            # records table and re-vote for each of the n_boot resamples, minutes at 200 problems
            draws = rng.integers(0, len(seq_votes), size=(n_boot, len(seq_votes)))
        # the point estimates are maj_at_k itself, the numbers a notebook records
        row = {"generations": k, "sequential": maj_at_k(sequential, k // 2, turn=2),
               "parallel": maj_at_k(parallel, k, turn=1)}
        row["difference"] = row["sequential"] - row["parallel"]
        s, p = seq_votes.to_numpy(float)[draws].mean(1), par_votes.to_numpy(float)[draws].mean(1)
        for name, boot in (("sequential", s), ("parallel", p), ("difference", s - p)):
            row[f"{name}_lo"], row[f"{name}_hi"] = (float(q) for q in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
        rows.append(row)
    cols = ["sequential", "sequential_lo", "sequential_hi", "parallel", "parallel_lo", "parallel_hi",
            "difference", "difference_lo", "difference_hi"]
    return pd.DataFrame(rows).set_index("generations")[cols]
