"""Probes: what generates beside the episodes, to ask whether attempt 2 reads attempt 1.

* `parallel_resample`: a fresh, independent first-turn sample of every (problem, sample) pair,
  the baseline a second attempt must beat to be more than a resample;
* `probe_second_attempt`: rerun only turn 2 after arbitrary attempt-1 texts; `gold_probe`
  (attempt 1 = a clean solution) and `context_swap` (attempt 1 = another problem's own attempt,
  donors from a seeded `derangement`, `swap_donors`) are its two uses;
* `evaluate_model`: a model's two-attempt episodes, every transition metric with its CI, and
  the probes' readouts (`sclab.metrics.second_attempt`).

Every table they return has one row per (problem_id, sample), graded like a records row.

    >>> from sclab.probes import derangement
    >>> derangement(4, seed=0).tolist()
    [3, 2, 1, 0]
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from sclab.generate import Generator, SamplingParams
from sclab.records import EPISODE, validate
from sclab.rollout import first_turn
from sclab.strategies import get_strategy
from sclab.tasks.base import Problem, Task

Key = tuple  # (problem_id, sample)
PROBE_COLUMNS = ["problem_id", "sample", "attempt1", "response", "extracted", "how", "correct", "tokens",
                 "truncated"]
PARALLEL_COLUMNS = ["problem_id", "sample", "sample_id", "response", "extracted", "how", "correct", "tokens",
                    "truncated"]


def _one(params: SamplingParams) -> SamplingParams:
    return dataclasses.replace(params, n=1)


def _by_id(problems) -> dict:
    """{problem id: Problem} from a list of Problems or such a dict."""
    return dict(problems) if isinstance(problems, Mapping) else {p.id: p for p in problems}


def parallel_resample(generator: Generator, task: Task, problems: Sequence[Problem], params: SamplingParams,
                      sample_offset: int = 1000, desc: str = "parallel resample") -> pd.DataFrame:
    """A fresh first-turn sample for every (problem, sample < params.n), graded.

    Same conversation and decoding settings as the episodes' turn 1, but sample id
    `sample_offset + sample`, so it is independent of the episode's attempt 1 (episodes use
    ids 0..n-1). `sample` is the episode's sample index, for pairing; `sample_id` the id drawn."""
    if sample_offset < params.n:
        raise ValueError(f"sample_offset={sample_offset} must be >= params.n={params.n}, or the 'fresh' "
                         f"samples would repeat the episodes' own first attempts")
    if not problems:
        raise ValueError("parallel_resample: no problems given")
    keys = [(p, s) for p in problems for s in range(params.n)]
    out = generator.generate([first_turn(p, task) for p, _ in keys], _one(params), desc=desc,
                             sample_ids=[sample_offset + s for _, s in keys])
    rows = []
    for (p, s), comps in zip(keys, out):
        comp, g = comps[0], task.grade(p, comps[0].text)
        rows.append({"problem_id": p.id, "sample": s, "sample_id": sample_offset + s, "response": comp.text,
                     "extracted": g.extracted, "how": g.how, "correct": bool(g.correct), "tokens": comp.tokens,
                     "truncated": comp.truncated})
    return pd.DataFrame(rows, columns=PARALLEL_COLUMNS)


def probe_second_attempt(generator: Generator, task: Task, problems: Sequence[Problem], strategy: str,
                         params: SamplingParams, first_attempts: Mapping[Key, str],
                         desc: str = "probe turn 2") -> pd.DataFrame:
    """Run only turn 2 after arbitrary attempt-1 texts, and grade it.

    The conversation is first_turn(problem) + assistant `first_attempts[(problem_id, sample)]`
    + the strategy's user turn, sampled with sample id `sample` at `params` (n ignored):
    with the episodes' own turn-1 responses this is exactly `run_episodes`' turn 2.
    Single-step strategies only (a multi-step one would need the model's own feedback)."""
    strat = get_strategy(strategy)
    if len(strat.messages(task.dialect)) != 1:
        raise ValueError(f"probe_second_attempt: strategy {strategy!r} has {len(strat.messages(task.dialect))} "
                         f"user steps; only single-step strategies can be probed")
    if not first_attempts:
        raise ValueError("probe_second_attempt: no first attempts given")
    by_id = _by_id(problems)
    unknown = [k for k in first_attempts if k[0] not in by_id]
    if unknown:
        raise ValueError(f"first_attempts key {unknown[0]!r}: problem not among the {len(by_id)} problems given")
    order = {pid: i for i, pid in enumerate(by_id)}
    keys = sorted(first_attempts, key=lambda k: (order[k[0]], k[1]))
    convs = []
    for pid, s in keys:
        p = by_id[pid]
        msg = strat.turns(task, p)[0]
        convs.append(first_turn(p, task) + [{"role": "assistant", "content": first_attempts[(pid, s)]},
                                            {"role": "user", "content": msg}])
    out = generator.generate(convs, _one(params), desc=desc, sample_ids=[s for _, s in keys])
    rows = []
    for (pid, s), comps in zip(keys, out):
        comp, g = comps[0], task.grade(by_id[pid], comps[0].text)
        rows.append({"problem_id": pid, "sample": s, "attempt1": first_attempts[(pid, s)], "response": comp.text,
                     "extracted": g.extracted, "how": g.how, "correct": bool(g.correct), "tokens": comp.tokens,
                     "truncated": comp.truncated})
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


def gold_probe(generator: Generator, task: Task, problems: Sequence[Problem], strategy: str,
               params: SamplingParams, clean_solution: Callable[[Problem], str],
               desc: str = "gold probe") -> pd.DataFrame:
    """`probe_second_attempt` with attempt 1 = clean_solution(problem), for samples 0..params.n-1
    (on the toy world: `sclab.toy.edits.toy_clean_solution`)."""
    firsts = {(p.id, s): clean_solution(p) for p in problems for s in range(params.n)}
    return probe_second_attempt(generator, task, problems, strategy, params, firsts, desc=desc)


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A uniformly random permutation of range(n) with no fixed point (rejection sampling, seeded)."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if (perm != np.arange(n)).all():
            return perm


def swap_donors(records: pd.DataFrame, problems: Sequence[Problem], seed: int = 0, t1: int = 1) -> dict[Key, Key]:
    """{(problem_id, sample): (donor problem_id, sample)}: a seeded derangement of the problems,
    so every attempt 1 comes from another problem, same sample index."""
    validate(records)
    ids = list(_by_id(problems))
    perm = derangement(len(ids), seed)
    donor_of = {pid: ids[j] for pid, j in zip(ids, perm)}
    have = records.loc[records["turn"] == t1, EPISODE]
    have = have[have["problem_id"].isin(donor_of)]
    keys = set(map(tuple, have.itertuples(index=False)))
    order, out = {pid: i for i, pid in enumerate(ids)}, {}
    for pid, s in sorted(keys, key=lambda k: (order[k[0]], k[1])):
        d = (donor_of[pid], s)
        if d not in keys:
            raise ValueError(f"swap donor {d!r} for {(pid, s)!r} has no turn-{t1} record")
        out[(pid, s)] = d
    if not out:
        raise ValueError(f"records have no turn-{t1} rows for the problems given")
    return out


def context_swap(generator: Generator, task: Task, problems: Sequence[Problem], strategy: str,
                 params: SamplingParams, records: pd.DataFrame, seed: int = 0,
                 desc: str = "context swap") -> pd.DataFrame:
    """`probe_second_attempt` with attempt 1 = another problem's own turn-1 response
    (`swap_donors`); adds donor_problem_id and donor_extracted (the donor's turn-1 answer)."""
    validate(records, ["response", "extracted"])
    t1 = records[records["turn"] == 1].set_index(EPISODE)
    donors = swap_donors(records, problems, seed)
    df = probe_second_attempt(generator, task, problems, strategy, params,
                              {k: t1.loc[d, "response"] for k, d in donors.items()}, desc=desc)
    df["donor_problem_id"] = [donors[k][0] for k in zip(df["problem_id"], df["sample"])]
    df["donor_extracted"] = [t1.loc[donors[k], "extracted"] for k in zip(df["problem_id"], df["sample"])]
    return df


def evaluate_model(model, tokenizer, task: Task, problems: Sequence[Problem], strategy: str,
                   params: SamplingParams, *, n_boot: int = 1000, seed: int = 0, batch_size: int = 64,
                   parallel: bool = True, probes: bool = False, clean_solution: Callable | None = None,
                   progress: bool = False):
    """Two-attempt episodes of a model on `problems`, with every transition metric and its CI.

    Returns (records, metrics): `metrics` is `sclab.metrics.metrics_with_ci` plus `keep_fix_rates`,
    and with `parallel=True` the fresh-sample comparison (`acc_parallel`, `seq_minus_parallel`
    and its CI); `probes=True` adds the gold probe (needs `clean_solution`, default: the toy
    world's) and the context swap (`acc_t2_gold`, `acc_t2_swap`, ...) and, on the toy world, the
    edit locations. Generation is uncached (trained models change under the same name)."""
    from sclab.metrics import metrics_with_ci, second_attempt_report
    from sclab.rollout import run_episodes

    gen = Generator(model, tokenizer, cache=False, progress=progress, batch_size=batch_size)
    records = run_episodes(gen, task, problems, strategy=strategy, params=params)
    out = metrics_with_ci(records, n_boot=n_boot, seed=seed)
    par = gold = swap = None
    if parallel:
        par = parallel_resample(gen, task, problems, params)
    if probes:
        if clean_solution is None:
            from sclab.toy.edits import toy_clean_solution as clean_solution
        gold = gold_probe(gen, task, problems, strategy, params, clean_solution)
        swap = context_swap(gen, task, problems, strategy, params, records, seed=seed)
    toy = problems if probes and task.dialect == "toy" else None
    out |= second_attempt_report(records, parallel=par, gold=gold, swap=swap, problems=toy, n_boot=n_boot, seed=seed)
    return records, out


__all__ = ["PROBE_COLUMNS", "PARALLEL_COLUMNS", "parallel_resample", "probe_second_attempt", "gold_probe",
           "derangement", "swap_donors", "context_swap", "evaluate_model"]
