"""Self-correction episodes: each problem's attempt 1 .. T, with a named strategy between attempts.

`run_episodes` returns the records table, one row per (problem_id, sample, turn), that every
metric and training-set builder reads:

    problem_id, sample, turn, strategy, stop, response, extracted, how, correct, tokens, time,
    truncated, logprob, carried, feedback

plus the task's own label columns where it has them (`Task.label_columns`): on the toy world
every attempt's error profile (`sclab.toy.labels`: form, split, first wrong line, its kind),
a kept or carried answer inheriting the labels of the attempt it keeps.

Stopping (Huang et al. arXiv 2310.01798): `intrinsic` runs every turn for every sample;
`oracle` stops a sample once it is correct (using the gold label) and carries its answer
forward in `carried` rows. A strategy may also stop on the model's own feedback
(Self-Refine): then the previous attempt is carried, and `tokens` still counts the feedback. `sclab.metrics.oracle_stop` gives the oracle-stopped view of an
intrinsic run, so both can be compared on the same episodes.

    >>> from sclab.rollout import run_episodes
    >>> # df = run_episodes(Generator("toy:arith"), get_task("arith"), problems, strategy="retry")
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from sclab import records
from sclab.generate import Completion, Generator, SamplingParams
from sclab.records import COLUMNS
from sclab.strategies import get_strategy
from sclab.tasks.base import Problem, Task

STOPS = ("intrinsic", "oracle")


def first_turn(problem: Problem, task: Task) -> list[dict]:
    return [{"role": "user", "content": task.prompt(problem)}]


def run_episodes(generator: Generator, task: Task, problems: Sequence[Problem], *, strategy: str = "retry",
                 turns: int = 2, params: SamplingParams = SamplingParams(), stop: str = "intrinsic",
                 return_histories: bool = False):
    """Run `params.n` episodes of `turns` attempts for every problem and grade every attempt.

    Turn 1 depends only on the problem, the sampling params and the sample index, so every
    strategy shares it through the generation cache."""
    strat = get_strategy(strategy)
    if stop not in STOPS:
        raise ValueError(f"stop must be one of {', '.join(STOPS)}, got {stop!r}")
    if turns < 1:
        raise ValueError(f"turns must be >= 1, got {turns}")
    if strat.only_after_wrong and stop != "oracle":
        raise ValueError(f"strategy {strategy!r} is only said after a wrong attempt (it uses the gold label): "
                         f"run it with stop='oracle'")
    if not problems:
        raise ValueError("run_episodes: no problems given")
    n_steps = len(strat.messages(task.dialect))
    one = SamplingParams(**{**params.__dict__, "n": 1})

    # turn 1: n samples per problem
    first = generator.generate([first_turn(p, task) for p in problems], params, desc="turn 1")
    rows, hist, live = [], {}, []
    for p, comps in zip(problems, first):
        for s, comp in enumerate(comps):
            g = task.grade(p, comp.text)
            rows.append(records.row(p, s, 1, strategy, stop, comp, g, task=task))
            hist[(p.id, s)] = first_turn(p, task) + [{"role": "assistant", "content": comp.text}]
            live.append((p, s, g.correct, rows[-1]))

    for t in range(2, turns + 1):
        cont = [(p, s, row) for p, s, ok, row in live if not (stop == "oracle" and ok)]
        done = [(p, s, row) for p, s, ok, row in live if stop == "oracle" and ok]
        feedback = {(p.id, s): [] for p, s, _ in cont}
        spent = {(p.id, s): 0 for p, s, _ in cont}
        final: dict[tuple, Completion] = {}
        active = cont
        for k in range(n_steps):
            convs = []
            for p, s, _ in active:
                msg = strat.turns(task, p)[k]
                hist[(p.id, s)].append({"role": "user", "content": msg})
                convs.append(hist[(p.id, s)])
            desc = f"turn {t}/{turns} ({strategy}" + (f", step {k + 1}/{n_steps})" if n_steps > 1 else ")")
            out = generator.generate(convs, one, desc=desc, sample_ids=[s for _, s, _ in active]) if convs else []
            for (p, s, _), o in zip(active, out):
                comp = o[0]
                hist[(p.id, s)].append({"role": "assistant", "content": comp.text})
                spent[(p.id, s)] += comp.tokens
                if k < n_steps - 1:
                    feedback[(p.id, s)].append(comp.text)
                else:
                    final[(p.id, s)] = comp
            if k < n_steps - 1 and strat.stop_if:
                # Self-Refine: the model's own feedback says "correct" -> keep the previous attempt
                active = [(p, s, r) for p, s, r in active if not strat.stops(feedback[(p.id, s)][-1])]
        new_live = []
        for p, s, prev in cont:
            key = (p.id, s)
            if key in final:
                comp = final[key]
                g = task.grade(p, comp.text)
                row = records.row(p, s, t, strategy, stop, comp, g, feedback="\n".join(feedback[key]), task=task,
                                  prev=prev)
                row["tokens"] = spent[key]  # the turn's cost: feedback steps included
            else:  # stopped by its own feedback: the previous attempt stands
                row = {**prev, "turn": t, "tokens": spent[key], "time": 0.0, "logprob": 0.0, "carried": True,
                       "feedback": "\n".join(feedback[key])}
            rows.append(row)
            new_live.append((p, s, row["correct"], row))
        for p, s, prev in done:  # oracle stop: the correct answer is kept, nothing is generated
            carried = {**prev, "turn": t, "tokens": 0, "time": 0.0, "logprob": 0.0, "carried": True, "feedback": ""}
            rows.append(carried)
            new_live.append((p, s, True, carried))
        live = new_live

    order = {p.id: i for i, p in enumerate(problems)}
    df = pd.DataFrame(rows, columns=COLUMNS + list(task.label_columns))
    df = df.iloc[sorted(range(len(df)), key=lambda i: (order[rows[i]["problem_id"]], rows[i]["sample"], rows[i]["turn"]))]
    df = df.reset_index(drop=True)
    return (df, hist) if return_histories else df
