"""Does the second attempt read the first? Diagnostics for two-attempt self-correction.

A second attempt can raise accuracy without using the first at all: a resampler that is
simply sharper on the second turn gains as much. These functions separate the two readings:

* `keep_fix_rates`: P(keep | right at t1) and P(fix | wrong at t1). A selective corrector
  keeps right answers and fixes wrong ones; a resampler that ignores attempt 1 has both
  close to its own accuracy.
* `parallel_resample` + `sequential_vs_parallel`: attempt 2 against a fresh, independent
  first-turn sample of the same (problem, sample) pairs.
* `probe_second_attempt`, `gold_probe`, `context_swap` (+ `probe_summary`): rerun only the
  second turn with attempt 1 replaced by a clean solution or by another problem's attempt.
  A model that reads attempt 1 does better after the gold attempt and is moved by the swap;
  one that ignores it is unchanged by both.
* `edit_locations` / `locate_edits` (toy world): where attempt 2 first departs from a wrong
  attempt 1, against attempt 1's first wrong line.
* `second_attempt_report`: all of the above as one flat dict of floats, for recording.

Everything but the three generating functions is a pure function of records tables
(`sclab.rollout.COLUMNS`) and returns plain dicts or DataFrames.

    >>> import pandas as pd; from sclab.diagnostics import keep_fix_rates
    >>> df = pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2],
    ...                    "correct": [True, True, False, True], "extracted": ["3", "3", "4", "5"]})
    >>> r = keep_fix_rates(df); r["keep_right"], r["fix_wrong"], r["selectivity"], r["change_wrong"]
    (1.0, 1.0, 0.0, 1.0)
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from sclab.generate import Generator, SamplingParams
from sclab.metrics import _check, _div, _draws, _interval, _pairs
from sclab.rollout import first_turn
from sclab.strategies import get_strategy
from sclab.tasks.base import Problem, Task

Key = tuple  # (problem_id, sample)
PROBE_COLUMNS = ["problem_id", "sample", "attempt1", "response", "extracted", "how", "correct", "tokens",
                 "truncated"]
PARALLEL_COLUMNS = ["problem_id", "sample", "sample_id", "response", "extracted", "how", "correct", "tokens",
                    "truncated"]
EDIT_KINDS = ("before", "at", "after", "no_lines", "unlocated")


# ----------------------------------------------------------------------------- helpers
def _one(params: SamplingParams) -> SamplingParams:
    return dataclasses.replace(params, n=1)


def _same_answer(e1: pd.Series, e2: pd.Series) -> np.ndarray:
    """Equal extracted answers, with None/NaN (an extraction failure) a value of its own:
    failure -> failure is no change, failure <-> answer is a change."""
    n1, n2 = e1.isna().to_numpy(), e2.isna().to_numpy()
    return (n1 & n2) | (~n1 & ~n2 & (e1.to_numpy(object) == e2.to_numpy(object)))


def _need(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; columns present: {list(df.columns)}")


def _by_id(problems) -> dict:
    """{problem id: Problem} from a list of Problems or such a dict."""
    return dict(problems) if isinstance(problems, Mapping) else {p.id: p for p in problems}


# ----------------------------------------------------------------------------- 1. keep / fix
def keep_fix_rates(records: pd.DataFrame, t1: int = 1, t2: int = 2) -> dict:
    """P(keep | right at t1), P(fix | wrong at t1) and how often the answer changes in each case.

    keep_right = right at t2 among the pairs right at t1; fix_wrong = right at t2 among those
    wrong at t1; selectivity = keep_right - fix_wrong; change_right / change_wrong = the
    extracted answer differs (None/NaN, an extraction failure, is a value of its own here, so
    failure -> failure is no change; `sclab.metrics.answer_changed_rate` counts it as changed).
    Pooled over (problem, sample) pairs; NaN where nothing is right (or wrong) at t1.

    Selective correction keeps right answers and fixes wrong ones: keep_right near 1 with
    fix_wrong well above 0. A sharper resampler that ignores attempt 1 draws attempt 2 afresh,
    so P(keep|right) ≈ P(fix|wrong) ≈ its own accuracy and selectivity ≈ 0 (up to
    problem difficulty: hard problems are both wrong at t1 and hard to fix, which makes the
    selectivity of a pure resampler positive; compare with `sequential_vs_parallel`).

    Identities: keep_right = 1 - delta_c2i/acc_t1 and fix_wrong = delta_i2c/(1 - acc_t1)
    (`sclab.metrics.correction_metrics`); with the same number of samples per problem they
    equal CCT's CL and CS, and selectivity is `fit_convergence`'s alpha.
    """
    _check(records, ["extracted"])
    p = _pairs(records, t1, t2, ("correct", "extracted"))
    c1, c2 = p["correct_1"].to_numpy(bool), p["correct_2"].to_numpy(bool)
    changed = ~_same_answer(p["extracted_1"], p["extracted_2"])
    n_right, n_wrong = int(c1.sum()), int((~c1).sum())
    keep, fix = float(_div((c1 & c2).sum(), n_right)), float(_div((~c1 & c2).sum(), n_wrong))
    return {"n": len(p), "n_right": n_right, "n_wrong": n_wrong, "keep_right": keep, "fix_wrong": fix,
            "selectivity": keep - fix, "change_right": float(_div((c1 & changed).sum(), n_right)),
            "change_wrong": float(_div((~c1 & changed).sum(), n_wrong))}


# ----------------------------------------------------------------------------- 2. sequential vs parallel
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


def _paired(records: pd.DataFrame, other: pd.DataFrame, what: str, t1: int = 1, t2: int = 2) -> pd.DataFrame:
    """The episodes' (problem, sample) pairs (correct_1, correct_2, extracted_1, ...) joined with
    `other`'s `correct`/`extracted` as correct_o/extracted_o; every episode pair must be in `other`."""
    _need(other, ["problem_id", "sample", "correct"], what)
    cols = ("correct", "extracted") if "extracted" in records.columns else ("correct",)
    p = _pairs(records, t1, t2, cols)
    keep = [c for c in ("correct", "extracted", "response") if c in other.columns]
    o = other[["problem_id", "sample", *keep]]
    if o.duplicated(["problem_id", "sample"]).any():
        raise ValueError(f"{what} has more than one row for some (problem_id, sample)")
    both = p.merge(o.rename(columns={c: f"{c}_o" for c in keep}), on=["problem_id", "sample"], how="left",
                   indicator=True)
    lost = both[both["_merge"] != "both"]
    if len(lost):
        pid, sample = lost["problem_id"].tolist()[0], lost["sample"].tolist()[0]
        raise ValueError(f"{what} has no row for problem {pid!r} sample {sample!r} "
                         f"({len(lost)} episode pair(s) missing)")
    return both.drop(columns="_merge")


def _paired_diff_ci(problem_id, a, b, n_boot: int, alpha: float, seed: int) -> tuple[float, float]:
    """Percentile CI of mean(a) - mean(b) over problem resamples (the draws of `bootstrap_ci`)."""
    g = pd.DataFrame({"pid": problem_id, "n": 1.0, "a": np.asarray(a, float), "b": np.asarray(b, float)})
    s = g.groupby("pid", sort=True).sum()
    draw = _draws(len(s), n_boot, seed)
    w = np.zeros((n_boot, len(s)))
    np.add.at(w, (np.repeat(np.arange(n_boot), len(s)), draw.ravel()), 1.0)
    return _interval((w @ s["a"].to_numpy() - w @ s["b"].to_numpy()) / (w @ s["n"].to_numpy()), alpha)


def sequential_vs_parallel(records: pd.DataFrame, parallel_df: pd.DataFrame, t1: int = 1, t2: int = 2,
                           n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Attempt 2 against a fresh independent sample on the same (problem, sample) pairs.

    acc_t1, acc_t2 (episode), acc_parallel (`parallel_resample`), seq_minus_parallel =
    acc_t2 - acc_parallel with a paired problem-bootstrap CI (`_lo`, `_hi`), and the
    pass@2-style oracle unions union_seq = P(t1 or t2 right), union_parallel = P(t1 or
    fresh right): a resampler that ignores attempt 1 has seq_minus_parallel ≈ 0."""
    both = _paired(records, parallel_df, "parallel_df", t1, t2)
    c1, c2, cp = (both[c].to_numpy(bool) for c in ("correct_1", "correct_2", "correct_o"))
    lo, hi = _paired_diff_ci(both["problem_id"].to_numpy(), c2, cp, n_boot, alpha, seed)
    return {"n": len(both), "acc_t1": float(c1.mean()), "acc_t2": float(c2.mean()), "acc_parallel": float(cp.mean()),
            "seq_minus_parallel": float(c2.mean() - cp.mean()), "seq_minus_parallel_lo": lo,
            "seq_minus_parallel_hi": hi, "union_seq": float((c1 | c2).mean()),
            "union_parallel": float((c1 | cp).mean())}


# ----------------------------------------------------------------------------- 3. probes
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


def toy_clean_solution(problem: Problem, world_p: int = 13) -> str:
    """The toy world's correct worked solution, `a op c = r ; ... > answer` (sclab.toy.world)."""
    from sclab.toy.world import parse_question, render, solve

    return render(solve(parse_question(problem.question), world_p))


def gold_probe(generator: Generator, task: Task, problems: Sequence[Problem], strategy: str,
               params: SamplingParams, clean_solution: Callable[[Problem], str],
               desc: str = "gold probe") -> pd.DataFrame:
    """`probe_second_attempt` with attempt 1 = clean_solution(problem), for samples 0..params.n-1."""
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
    _need(records, ["problem_id", "sample", "turn"], "records")
    ids = list(_by_id(problems))
    perm = derangement(len(ids), seed)
    donor_of = {pid: ids[j] for pid, j in zip(ids, perm)}
    have = records.loc[records["turn"] == t1, ["problem_id", "sample"]]
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
    _need(records, ["problem_id", "sample", "turn", "response", "extracted"], "records")
    t1 = records[records["turn"] == 1].set_index(["problem_id", "sample"])
    donors = swap_donors(records, problems, seed)
    df = probe_second_attempt(generator, task, problems, strategy, params,
                              {k: t1.loc[d, "response"] for k, d in donors.items()}, desc=desc)
    df["donor_problem_id"] = [donors[k][0] for k in zip(df["problem_id"], df["sample"])]
    df["donor_extracted"] = [t1.loc[donors[k], "extracted"] for k in zip(df["problem_id"], df["sample"])]
    return df


def probe_summary(records: pd.DataFrame, gold: pd.DataFrame | None = None, swap: pd.DataFrame | None = None,
                  t1: int = 1, t2: int = 2) -> dict:
    """acc_t2_own (the episodes' attempt 2) against acc_t2_gold / acc_t2_swap on the same
    (problem, sample) pairs, their differences, and swap_follows_donor: the fraction of swapped
    attempts 2 that give the donor's answer (a copy of attempt 1, whatever the question)."""
    out = {}
    for name, df in (("gold", gold), ("swap", swap)):
        if df is None:
            continue
        both = _paired(records, df, f"{name} probe", t1, t2)
        own, probe = both["correct_2"].to_numpy(bool), both["correct_o"].to_numpy(bool)
        out |= {f"n_{name}": len(both), f"acc_t2_own_{name}": float(own.mean()),
                f"acc_t2_{name}": float(probe.mean()), f"{name}_minus_own": float(probe.mean() - own.mean())}
        if name == "swap" and "donor_extracted" in df.columns:
            out["swap_follows_donor"] = float(_same_answer(df["extracted"], df["donor_extracted"]).mean())
    if gold is None and swap is None:
        raise ValueError("probe_summary: pass gold= and/or swap= probe results")
    out["acc_t2_own"] = out.get("acc_t2_own_gold", out.get("acc_t2_own_swap"))
    return out


# ----------------------------------------------------------------------------- 4. edit locations (toy)
def _first_diff(a: list, b: list) -> int:
    """First index where two line lists differ; the shorter length if one is a prefix of the other
    (len(a) if identical: the attempts differ only after their working)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def locate_edits(problems, first: Mapping[Key, str], second: Mapping[Key, str], p: int = 13) -> pd.DataFrame:
    """For each key in both maps: where `second` first departs from `first` (`edit_line`, by
    solution line, `parse_lines`) against `first`'s first wrong line (`first_wrong_line`), and
    `kind`: "before" / "at" / "after" the first wrong line, "no_lines" (the second text has no
    solution lines: a `same > r` keep, or unparsable), "unlocated" (the first text has no
    wrong line to compare with: unparsable, or every line right given its own inputs, e.g. a
    solution that starts from a wrong number or ends on a wrong final answer).
    `second` can hold episodes' attempts 2 or any other texts, e.g. parallel resamples."""
    from sclab.toy.world import first_wrong_line, parse_lines

    by_id = _by_id(problems)
    rows = []
    for key in [k for k in first if k in second]:
        if key[0] not in by_id:
            raise ValueError(f"locate_edits: problem {key[0]!r} not among the problems given")
        a, b = first[key], second[key]
        wrong = first_wrong_line(by_id[key[0]], a, p)
        la, lb = parse_lines(a) or [], parse_lines(b) or []
        edit = _first_diff(la, lb) if lb else None
        if edit is None:
            kind = "no_lines"
        elif wrong is None:
            kind = "unlocated"
        else:
            kind = "before" if edit < wrong else "at" if edit == wrong else "after"
        rows.append({"problem_id": key[0], "sample": key[1], "first_wrong": wrong, "edit_line": edit, "kind": kind})
    out = pd.DataFrame(rows, columns=["problem_id", "sample", "first_wrong", "edit_line", "kind"])
    return out.astype({"first_wrong": "Int64", "edit_line": "Int64"})  # <NA>: no wrong line / no lines


def edit_locations(records: pd.DataFrame, task_problems, p: int = 13, t1: int = 1, t2: int = 2,
                   second: pd.DataFrame | None = None) -> pd.DataFrame:
    """`locate_edits` over the toy-world pairs with attempt 1 wrong and attempt 2's text
    different from it; attempt 2 is the episodes' turn t2, or `second`'s `response` (e.g.
    `parallel_resample` output, for the baseline) on the same pairs.

    Caveat: on the toy world every line is determined by the previous one, so a fresh correct
    redo also departs from a wrong attempt at (or before) its first wrong line: "at" is not by
    itself evidence of a targeted edit. Compare with the same statistic on parallel resamples
    (`second=parallel_df`), and summarise both with `summarize_edits`."""
    _need(records, ["problem_id", "sample", "turn", "correct", "response"], "records")
    pairs = _pairs(records, t1, t2, ("correct", "response"))
    if second is not None:
        _need(second, ["response"], "second")
        both = _paired(records, second, "second", t1, t2)
        pairs = pairs.drop(columns="response_2").merge(
            both[["problem_id", "sample", "response_o"]].rename(columns={"response_o": "response_2"}),
            on=["problem_id", "sample"])
    sel = pairs[~pairs["correct_1"].astype(bool) & (pairs["response_1"] != pairs["response_2"])]
    keys = list(zip(sel["problem_id"], sel["sample"]))
    return locate_edits(task_problems, dict(zip(keys, sel["response_1"])), dict(zip(keys, sel["response_2"])), p)


def summarize_edits(table: pd.DataFrame) -> dict:
    """Fractions edit_before/at/after_first_wrong, edit_no_lines, edit_unlocated (summing to 1;
    NaN when empty) and n_edits, from `edit_locations` / `locate_edits`."""
    _need(table, ["kind"], "edit table")
    n = len(table)
    names = {"before": "edit_before_first_wrong", "at": "edit_at_first_wrong", "after": "edit_after_first_wrong",
             "no_lines": "edit_no_lines", "unlocated": "edit_unlocated"}
    return {"n_edits": n, **{names[k]: float(_div((table["kind"] == k).sum(), n)) for k in EDIT_KINDS}}


# ----------------------------------------------------------------------------- 5. report
def second_attempt_report(records: pd.DataFrame, *, parallel: pd.DataFrame | None = None,
                          gold: pd.DataFrame | None = None, swap: pd.DataFrame | None = None,
                          problems=None, p: int = 13, n_boot: int = 1000, seed: int = 0) -> dict:
    """One flat dict of floats: keep_fix_rates, then (when given) sequential_vs_parallel,
    probe_summary, and, with toy-world `problems`, summarize_edits of the episodes
    (`edit_*`) and of the parallel resamples (`parallel_edit_*`)."""
    out = dict(keep_fix_rates(records))
    if parallel is not None:
        out |= sequential_vs_parallel(records, parallel, n_boot=n_boot, seed=seed)
    if gold is not None or swap is not None:
        out |= probe_summary(records, gold, swap)
    if problems is not None:
        out |= summarize_edits(edit_locations(records, problems, p))
        if parallel is not None:
            base = summarize_edits(edit_locations(records, problems, p, second=parallel))
            out |= {f"parallel_{k}": v for k, v in base.items()}
    return {k: float(v) for k, v in out.items()}


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
    from sclab.metrics import metrics_with_ci
    from sclab.rollout import run_episodes

    gen = Generator(model, tokenizer, cache=False, progress=progress, batch_size=batch_size)
    records = run_episodes(gen, task, problems, strategy=strategy, params=params)
    out = metrics_with_ci(records, n_boot=n_boot, seed=seed)
    par = gold = swap = None
    if parallel:
        par = parallel_resample(gen, task, problems, params)
    if probes:
        gold = gold_probe(gen, task, problems, strategy, params, clean_solution or toy_clean_solution)
        swap = context_swap(gen, task, problems, strategy, params, records, seed=seed)
    toy = problems if probes and task.dialect == "toy" else None
    out |= second_attempt_report(records, parallel=par, gold=gold, swap=swap, problems=toy, n_boot=n_boot, seed=seed)
    return records, out


def mechanism(m: Mapping, base: Mapping | None = None, changed_floor: float = 0.1, moved: float = 0.05) -> str:
    """A one-line reading of a method's metrics (from `evaluate_model`): where its Δ comes from.

    In order:
    - "sabotaged attempt 1": attempt 1 more than 2 points below `base`'s, with Δ > 0;
    - "c->i damage": the Δ CI lies below 0;
    - "copy collapse": the Δ CI covers 0 and the answer changes after fewer than `changed_floor` of the
      wrong first attempts (`change_wrong`; the overall answer-changed rate without it);
    - "both attempts improved" / "both attempts degraded": the Δ CI covers 0 while Acc@t1 moved by more
      than `moved` from `base`'s (training changed the shared sampler, not the second attempt's use of the
      first);
    - "no significant change": any other Δ CI covering 0;
    - Δ > 0: "reads attempt 1" when a clean attempt 1 helps and another problem's attempt hurts (gold
      probe above, context swap below its own Acc@t2), "beats resampling" when attempt 2 beats a fresh
      sample (CI above 0) without the probes, "sharper second attempt only" otherwise."""
    if base is not None and m["acc_t1"] < base["acc_t1"] - 0.02 and m["delta"] > 0:
        return "sabotaged attempt 1"
    if m["delta_hi"] < 0:
        return "c->i damage"
    if m["delta_lo"] <= 0 <= m["delta_hi"]:
        changed = m.get("change_wrong", m.get("answer_changed_rate", np.nan))
        if changed < changed_floor:
            return "copy collapse"
        if base is not None and abs(m["acc_t1"] - base["acc_t1"]) > moved:
            return "both attempts improved" if m["acc_t1"] > base["acc_t1"] else "both attempts degraded"
        return "no significant change"
    if m.get("acc_t2_gold", np.nan) > m["acc_t2"] and m.get("acc_t2_swap", np.nan) < m["acc_t2"]:
        return "reads attempt 1"
    if m.get("seq_minus_parallel_lo", np.nan) > 0:
        return "beats resampling"
    return "sharper second attempt only"


__all__ = [
    "mechanism", "evaluate_model", "keep_fix_rates", "parallel_resample", "sequential_vs_parallel", "probe_second_attempt", "toy_clean_solution",
    "gold_probe", "derangement", "swap_donors", "context_swap", "probe_summary", "locate_edits", "edit_locations",
    "summarize_edits", "second_attempt_report",
]
