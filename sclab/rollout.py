"""Self-correction episodes: each problem's attempt 1 .. T, with a named strategy between attempts.

`run_episodes` returns the records table, one row per (problem_id, sample, turn), that every
metric and training-set builder reads:

    problem_id, sample, turn, strategy, stop, response, extracted, how, correct, tokens, time,
    truncated, logprob, carried, feedback

plus the task's own label columns where it has them (`Task.label_columns`): on the toy world
every attempt's error profile (`sclab.toy.labels`: form, split, first wrong line, its kind),
a kept or carried answer inheriting the labels of the attempt it keeps.

Each user turn is phrased by the strategy from the episode so far (`Strategy.turns(task,
problem, history)`, history = the sample's attempts as `sclab.strategies.Attempt`: text, grade
and, with `critic=`, the critic's verdict; the critique is recorded in `feedback`).

Stopping (Huang et al. arXiv 2310.01798): `intrinsic` runs every turn for every sample;
`oracle` stops a sample once it is correct (using the gold label) and carries its answer
forward in `carried` rows. The strategy decides the rest: where it does not speak after an
attempt (`Strategy.applies`: a critic with no objection) that attempt is carried the same way,
and where the model's own feedback says so (`Strategy.stops`, Self-Refine) the previous attempt
is carried, with `tokens` still counting the feedback. `sclab.metrics.oracle_stop` gives the
oracle-stopped view of an intrinsic run, so both can be compared on the same episodes.

    >>> from sclab.rollout import run_episodes
    >>> # df = run_episodes(Generator("toy:arith"), get_task("arith"), problems, strategy="retry")
"""
from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from sclab import records
from sclab.generate import Completion, Generator, SamplingParams
from sclab.records import COLUMNS
from sclab.strategies import STRATEGIES, Attempt, get_strategy
from sclab.tasks.base import Problem, Task

STOPS = ("intrinsic", "oracle")


def first_turn(problem: Problem, task: Task) -> list[dict]:
    return [{"role": "user", "content": task.prompt(problem)}]


def _critiques(critic: Callable, items: list[tuple[Problem, Attempt]]) -> list[str]:
    out = critic([p for p, _ in items], [a for _, a in items]) if items else []
    if not isinstance(out, (list, tuple)) or len(out) != len(items) or not all(isinstance(c, str) for c in out):
        raise TypeError(f"critic(problems, attempts) must return one str per attempt ({len(items)}), got {out!r:.200}")
    return list(out)


def run_episodes(generator: Generator, task: Task, problems: Sequence[Problem], *, strategy: str = "retry",
                 turns: int = 2, params: SamplingParams = SamplingParams(), stop: str = "intrinsic",
                 return_histories: bool = False, critic: Callable | None = None):
    """Run `params.n` episodes of `turns` attempts for every problem and grade every attempt.

    Turn 1 depends only on the problem, the sampling params and the sample index, so every
    strategy shares it through the generation cache. `critic(problems, attempts) -> [str]`
    (for strategies that show a critique: critic-feedback) gives its verdict on each latest
    attempt before every later turn, "" where it has no objection (that attempt then stands)."""
    strat = get_strategy(strategy)
    if stop not in STOPS:
        raise ValueError(f"stop must be one of {', '.join(STOPS)}, got {stop!r}")
    if turns < 1:
        raise ValueError(f"turns must be >= 1, got {turns}")
    if strat.needs_gold and stop != "oracle":
        raise ValueError(f"strategy {strategy!r} is only said after a wrong attempt (it uses the gold label): "
                         f"run it with stop='oracle'")
    if strat.needs_critic and not callable(critic):
        raise ValueError(f"strategy {strategy!r} shows a critic's verdict: pass critic=fn, fn(problems, attempts) "
                         f"-> one str per attempt ('' = no objection), got critic={critic!r}")
    if critic is not None and not strat.needs_critic:
        readers = sorted(n for n, st in STRATEGIES.items() if st.needs_critic)
        raise ValueError(f"critic= is read only by strategies that show a critique ({', '.join(readers)}); "
                         f"strategy {strategy!r} does not")
    if not problems:
        raise ValueError("run_episodes: no problems given")
    n_steps = len(strat.messages(task.dialect))
    one = SamplingParams(**{**params.__dict__, "n": 1})

    # turn 1: n samples per problem
    first = generator.generate([first_turn(p, task) for p in problems], params, desc="turn 1")
    rows, hist, live, episode = [], {}, [], {}
    for p, comps in zip(problems, first):
        for s, comp in enumerate(comps):
            g = task.grade(p, comp.text)
            rows.append(records.row(p, s, 1, strategy, stop, comp, g, task=task))
            hist[(p.id, s)] = first_turn(p, task) + [{"role": "assistant", "content": comp.text}]
            episode[(p.id, s)] = [Attempt(comp.text, g)]
            live.append((p, s, g.correct, rows[-1]))

    for t in range(2, turns + 1):
        waiting = [(p, s, row) for p, s, ok, row in live if not (stop == "oracle" and ok)]
        if critic is not None:
            verdicts = _critiques(critic, [(p, episode[(p.id, s)][-1]) for p, s, _ in waiting])
            for (p, s, _), c in zip(waiting, verdicts):
                last = episode[(p.id, s)][-1]
                episode[(p.id, s)][-1] = Attempt(last.text, last.grade, c)
        said = {(p.id, s): strat.turns(task, p, episode[(p.id, s)]) for p, s, _ in waiting
                if strat.applies(episode[(p.id, s)])}
        cont = [(p, s, row) for p, s, row in waiting if (p.id, s) in said]
        # oracle stop, or the strategy has nothing to say: the last attempt stands, nothing is generated
        done = [(p, s, row) for p, s, ok, row in live if (p.id, s) not in said]
        feedback = {(p.id, s): [] for p, s, _ in cont}
        spent = {(p.id, s): 0 for p, s, _ in cont}
        final: dict[tuple, Completion] = {}
        active = cont
        for k in range(n_steps):
            convs = []
            for p, s, _ in active:
                msg = said[(p.id, s)][k]
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
            if k < n_steps - 1:
                # Self-Refine: the model's own feedback says "correct" -> keep the previous attempt
                active = [(p, s, r) for p, s, r in active if not strat.stops(feedback[(p.id, s)][-1])]
        new_live = []
        for p, s, prev in cont:
            key = (p.id, s)
            critique = episode[key][-1].critique
            said_back = "\n".join(([critique] if critique else []) + feedback[key])
            if key in final:
                comp = final[key]
                g = task.grade(p, comp.text)
                row = records.row(p, s, t, strategy, stop, comp, g, feedback=said_back, task=task, prev=prev)
                row["tokens"] = spent[key]  # the turn's cost: feedback steps included
                episode[key].append(Attempt(comp.text, g))
            else:  # stopped by its own feedback: the previous attempt stands
                row = {**prev, "turn": t, "tokens": spent[key], "time": 0.0, "logprob": 0.0, "carried": True,
                       "feedback": said_back}
                episode[key].append(Attempt(episode[key][-1].text, episode[key][-1].grade))
            rows.append(row)
            new_live.append((p, s, row["correct"], row))
        for p, s, prev in done:
            carried = {**prev, "turn": t, "tokens": 0, "time": 0.0, "logprob": 0.0, "carried": True, "feedback": ""}
            rows.append(carried)
            episode[(p.id, s)].append(Attempt(episode[(p.id, s)][-1].text, episode[(p.id, s)][-1].grade))
            new_live.append((p, s, carried["correct"], carried))
        live = new_live

    order = {p.id: i for i, p in enumerate(problems)}
    df = pd.DataFrame(rows, columns=COLUMNS + list(task.label_columns))
    df = df.iloc[sorted(range(len(df)), key=lambda i: (order[rows[i]["problem_id"]], rows[i]["sample"], rows[i]["turn"]))]
    df = df.reset_index(drop=True)
    return (df, hist) if return_histories else df
