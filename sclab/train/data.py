"""Training sets from records: the model's own attempts turned into SFT examples.

Every builder reads the records table of `sclab.rollout.run_episodes` (one row per problem,
sample and turn) plus the Problems and the Task, and returns `(dataset, counts)`: a
`datasets.Dataset` in TRL's conversational prompt/completion format, one example a dict
`{"prompt": [messages], "completion": [messages], "kind": str, "problem_id": str}` (the loss
goes on the completion only), and a flat dict of how many examples of each kind were built and
were available, so a notebook can report the data budget. `n=` caps the total (to equalise
budgets across methods); a builder is a deterministic function of its inputs and `seed`.

- `vanilla_sft`: question -> a correct first attempt (rejection-sampling SFT).
- `cct_sft`: Confidence and Critique Improvement Tuning (Yang et al., "Confidence v.s. Critique",
  arXiv 2412.19513): [question, attempt 1, retry] -> attempt 2, half "confidence" examples (a
  right attempt 1, kept) and half "critique" examples (a wrong attempt 1, fixed by a right
  sample of the same problem). `mask_first=True` is Partial Answer Masking (PAM, Han et al.,
  "Small Language Model Can Self-correct", arXiv 2401.07301): the loss is on attempt 2 only.
- `pair_sft`: Pair-SFT, the SCoRe baseline (Kumar et al., arXiv 2409.12917): wrong -> right pairs.
- `star_sft`: STaR for self-correction (Zelikman et al., arXiv 2203.14465, as the SCoRe baseline):
  the model's own successful revisions (right after a wrong previous turn) with their real history.

    >>> from sclab.train.data import cct_sft
    >>> # ds, counts = cct_sft(records, problems, task, retry_message="again", n=200)
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from sclab.records import validate
from sclab.rollout import first_turn
from sclab.strategies import get_strategy
from sclab.tasks.base import Problem, Task

Message = dict


# ---------------------------------------------------------------- helpers shared by the builders

def _table(records, need: Iterable[str]) -> pd.DataFrame:
    """The records (a DataFrame or row dicts) as a validated table (`sclab.records.validate`)."""
    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    return validate(df, list(need))


def _problems(df: pd.DataFrame, problems: Sequence[Problem]) -> dict[str, Problem]:
    by_id = {p.id: p for p in problems}
    unknown = sorted(set(df.problem_id) - set(by_id))
    if unknown:
        raise ValueError(f"{len(unknown)} problem_id(s) in the records are not among the problems given, "
                         f"e.g. {unknown[:3]}")
    return by_id


def _ordered(df: pd.DataFrame, problems: Sequence[Problem]) -> pd.DataFrame:
    """Rows in a fixed order (problem order, sample, turn): what makes a builder deterministic."""
    order = {p.id: i for i, p in enumerate(problems)}
    key = df.problem_id.map(order)
    return df.assign(_order=key).sort_values(["_order", "sample", "turn"], kind="stable").drop(columns="_order")


def _unique(items: Iterable, key) -> list:
    seen, out = set(), []
    for it in items:
        k = key(it)
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def _example(kind: str, problem: Problem, task: Task, middle: list[Message], target: str,
             mask_first: bool) -> dict:
    """One example: the question, then `middle` (earlier attempts and user turns), then `target`.

    mask_first=True: prompt = everything before `target`, completion = [target] (loss on the last
    attempt only). mask_first=False: prompt = the question, completion = the rest of the
    conversation; `sclab.train.sft` then masks the user turns inside it (see `sft.tokenize_turns`)."""
    question = first_turn(problem, task)
    rest = middle + [{"role": "assistant", "content": target}]
    if mask_first:
        prompt, completion = question + rest[:-1], rest[-1:]
    else:
        prompt, completion = question, rest
    return {"prompt": prompt, "completion": completion, "kind": kind, "problem_id": problem.id}


def _take(pools: dict[str, list], n: int | None, rng: np.random.Generator, balance: bool) -> dict[str, list]:
    """Shuffle each pool and take from each. With balance, n=None takes min(pool sizes) of every
    kind (strictly balanced); n=k splits k evenly and, where a pool runs short, fills the rest
    from the others (balanced where possible). Without balance: everything, or a uniform n."""
    shuffled = {k: [pool[i] for i in rng.permutation(len(pool))] for k, pool in pools.items()}
    if not balance:
        flat = [(k, x) for k, pool in shuffled.items() for x in pool]
        flat = [flat[i] for i in rng.permutation(len(flat))][:n]
        return {k: [x for kk, x in flat if kk == k] for k in pools}
    if n is None:
        m = min((len(p) for p in pools.values()), default=0)
        return {k: pool[:m] for k, pool in shuffled.items()}
    quota, left = {}, n
    kinds = sorted(pools, key=lambda k: (len(pools[k]), list(pools).index(k)))  # smallest pool first
    for i, k in enumerate(kinds):
        share = left // (len(kinds) - i)
        quota[k] = min(len(pools[k]), share)
        left -= quota[k]
    return {k: pool[:quota[k]] for k, pool in shuffled.items()}


def _finish(examples: list[dict], rng: np.random.Generator, counts: dict):
    from datasets import Dataset

    examples = [examples[i] for i in rng.permutation(len(examples))]
    counts["total"] = len(examples)
    counts["problems"] = len({e["problem_id"] for e in examples})
    if not examples:
        return Dataset.from_dict({"prompt": [], "completion": [], "kind": [], "problem_id": []}), counts
    return Dataset.from_list(examples), counts


def _check_n(n):
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 0):
        raise ValueError(f"n must be None or an int >= 0, got {n!r}")


def _first_attempts(records, problems):
    """Distinct (problem_id, response) first attempts, split into right and wrong, in a fixed order."""
    df = _table(records, ["problem_id", "sample", "turn", "response", "correct"])
    by_id = _problems(df, problems)
    t1 = _ordered(df[df.turn == 1], problems)
    rows = _unique(zip(t1.problem_id, t1.response, t1.correct.astype(bool)), key=lambda r: (r[0], r[1]))
    right = [(pid, resp) for pid, resp, ok in rows if ok]
    wrong = [(pid, resp) for pid, resp, ok in rows if not ok]
    return by_id, right, wrong


def group_by_problem(items) -> dict[str, list]:
    """(problem_id, response) items -> {problem_id: [responses]}, in order."""
    out: dict[str, list] = {}
    for pid, resp in items:
        out.setdefault(pid, []).append(resp)
    return out


def pair_within_problem(items, others, rng):
    """Each (problem_id, x) of `items` paired with a seeded choice among `others` of the same problem:
    ([(pid, x, other)], how many items had no partner)."""
    of = group_by_problem(others)
    pairs, skipped = [], 0
    for pid, x in items:
        pool = of.get(pid)
        if not pool:
            skipped += 1
            continue
        pairs.append((pid, x, pool[int(rng.integers(len(pool)))]))
    return pairs, skipped


def _critique_pairs(right, wrong, rng):
    """Each distinct wrong attempt paired with a right attempt of the same problem (a seeded
    choice among that problem's distinct right ones); wrong attempts with none are counted."""
    return pair_within_problem(wrong, right, rng)


def _retry(retry_message):
    """problem -> [the user's retry turn]. `retry_message` is a str, or a function of the problem
    for turns that restate the question (the toy dialect, cct-reask)."""
    if callable(retry_message):
        return lambda problem: [{"role": "user", "content": retry_message(problem)}]
    if not isinstance(retry_message, str) or not retry_message.strip():
        raise ValueError(f"retry_message must be the user's retry turn as a non-empty str or a function of the "
                         f"problem (e.g. lambda p: get_strategy('retry').messages(task.dialect, question=p.question)[0]),"
                         f" got {retry_message!r}")
    return lambda problem: [{"role": "user", "content": retry_message}]


# ---------------------------------------------------------------- builders

def vanilla_sft(records, problems: Sequence[Problem], task: Task, n: int | None = None, seed: int = 0):
    """(question -> a correct first attempt), one example per distinct correct first-turn sample, at most n."""
    _check_n(n)
    rng = np.random.default_rng(seed)
    by_id, right, wrong = _first_attempts(records, problems)
    pick = _take({"vanilla": right}, n, rng, balance=False)["vanilla"]
    examples = [_example("vanilla", by_id[pid], task, [], resp, mask_first=True) for pid, resp in pick]
    return _finish(examples, rng, {"vanilla": len(examples), "available_vanilla": len(right)})


def cct_sft(records, problems: Sequence[Problem], task: Task, retry_message, n: int | None = None,
            seed: int = 0, mask_first: bool = False, balance: bool = True):
    """CCT (arXiv 2412.19513): [question, attempt 1, retry] -> attempt 2 from the model's own first attempts.

    confidence: attempt 1 right, attempt 2 repeats it (keeping the right answer);
    critique: attempt 1 wrong, attempt 2 a right sample of the same problem.
    Balanced half/half (see `_take`). mask_first=False trains on both attempts (the retry user
    turn stays masked); mask_first=True is PAM (arXiv 2401.07301): loss on attempt 2 only."""
    _check_n(n)
    retry = _retry(retry_message)
    rng = np.random.default_rng(seed)
    by_id, right, wrong = _first_attempts(records, problems)
    pairs, skipped = _critique_pairs(right, wrong, rng)
    pools = {"confidence": [(pid, r, r) for pid, r in right], "critique": pairs}
    picked = _take(pools, n, rng, balance)
    examples = [_example(kind, by_id[pid], task, [{"role": "assistant", "content": a1}] + retry(by_id[pid]), a2,
                         mask_first)
                for kind, items in picked.items() for pid, a1, a2 in items]
    counts = {"confidence": len(picked["confidence"]), "critique": len(picked["critique"]),
              "available_confidence": len(pools["confidence"]), "available_critique": len(pairs),
              "wrong_without_right_sample": skipped}
    return _finish(examples, rng, counts)


def pair_sft(records, problems: Sequence[Problem], task: Task, retry_message, n: int | None = None,
             seed: int = 0, mask_first: bool = True):
    """Pair-SFT (the SCoRe baseline, arXiv 2409.12917): [question, wrong attempt, retry] -> a right
    attempt of the same problem; the critique half of `cct_sft`, loss on the right attempt by default."""
    _check_n(n)
    retry = _retry(retry_message)
    rng = np.random.default_rng(seed)
    by_id, right, wrong = _first_attempts(records, problems)
    pairs, skipped = _critique_pairs(right, wrong, rng)
    pick = _take({"pair": pairs}, n, rng, balance=False)["pair"]
    examples = [_example("pair", by_id[pid], task, [{"role": "assistant", "content": a1}] + retry(by_id[pid]), a2,
                         mask_first)
                for pid, a1, a2 in pick]
    return _finish(examples, rng, {"pair": len(examples), "available_pair": len(pairs),
                                   "wrong_without_right_sample": skipped})


def _history(problem: Problem, task: Task, turns: dict[int, dict], t: int) -> list[Message]:
    """The messages after the question and before attempt t, rebuilt from the records: each earlier
    attempt, then the user turns of the strategy that produced the next one (a multi-step
    strategy's intermediate answers come from that row's `feedback`)."""
    msgs: list[Message] = []
    for j in range(1, t):
        msgs.append({"role": "assistant", "content": turns[j]["response"]})
        nxt = turns[j + 1]
        users = get_strategy(nxt["strategy"]).turns(task, problem)  # as run_episodes said them
        if len(users) > 2:
            raise ValueError(f"star_sft: strategy {nxt['strategy']!r} has {len(users)} user turns; its "
                             f"intermediate answers cannot be recovered from the joined `feedback` column")
        fb = nxt.get("feedback")
        inter = [fb if isinstance(fb, str) else ""] if len(users) == 2 else []
        for k, u in enumerate(users):
            msgs.append({"role": "user", "content": u})
            if k < len(users) - 1:
                msgs.append({"role": "assistant", "content": inter[k]})
    return msgs


def star_sft(records, problems: Sequence[Problem], task: Task, n: int | None = None, seed: int = 0,
             mask_first: bool = True):
    """STaR on revisions (the SCoRe baseline): every generated attempt t >= 2 that is right after a
    wrong attempt t-1, with its actual history (question, earlier attempts, the strategy's user
    turns). Loss on the revision by default. Carried rows (oracle stop) are never revisions."""
    _check_n(n)
    rng = np.random.default_rng(seed)
    df = _table(records, ["problem_id", "sample", "turn", "response", "correct", "strategy"])
    by_id = _problems(df, problems)
    df = _ordered(df, problems)
    if "carried" not in df.columns:
        df = df.assign(carried=False)
    cands = []
    for (pid, s), ep in df.groupby(["problem_id", "sample"], sort=False):
        turns = {int(r["turn"]): r for r in ep.to_dict("records")}
        for t in sorted(turns):
            prev = turns.get(t - 1)
            if t >= 2 and prev is not None and not bool(prev["correct"]) and bool(turns[t]["correct"]) \
                    and not bool(turns[t]["carried"]):
                cands.append((pid, _history(by_id[pid], task, turns, t), turns[t]["response"]))
    cands = _unique(cands, key=lambda c: (c[0], repr(c[1]), c[2]))
    pick = _take({"star": cands}, n, rng, balance=False)["star"]
    examples = [_example("star", by_id[pid], task, hist, resp, mask_first) for pid, hist, resp in pick]
    return _finish(examples, rng, {"star": len(examples), "available_star": len(cands)})


BUILDERS = {"vanilla": vanilla_sft, "cct": cct_sft, "pair": pair_sft, "star": star_sft}
