"""One shared pool of samples per problem, each with its self-reward (arXiv 2412.01951).

`sample_pool` draws n first attempts per problem once, through `Generator.generate` (so the
generation cache serves every later call, and turn 1 of any episode run with the same
sampling params), grades and labels them as records (`sclab.records.row`), and rescores every
sample teacher-forced at temperature 1 with `Generator.score`:

    self_reward        log π_base(y | x), summed over the sample's tokens (EOS included): the
                       sharpening paper's self-reward
    self_reward_mean   the same divided by its token count: length-normalised, an ablation only
    reward_tokens      the tokens scored

The sampler's own log-probabilities are never used for the reward: a tempered sampler's
log softmax(logits / T) is another number, and `Generator.score` is defined at T = 1 whatever
temperature drew the sample. `greedy_pool` does the same for the greedy attempt (T = 0), the
reference every sharpening method is read against.

On the toy world every problem also has a class from its gold path (`gold_path_kind`: does
the clean solution pass an unsure fact or a misconception entry?) and from its greedy attempt
(`greedy_kind`), so every curve can be split by the kind of error a method meets.

    >>> from sclab.tasks import get_task
    >>> task = get_task("arith")
    >>> sorted({gold_path_kind(p, task.world) for p in task.problems(200)})
    ['clean', 'misconception', 'unsure']
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from sclab import records
from sclab.generate import Generator, SamplingParams
from sclab.records import COLUMNS
from sclab.rollout import first_turn
from sclab.tasks.base import Problem, Task

REWARD_COLUMNS = ["self_reward", "self_reward_mean", "reward_tokens"]
# the gold path's classes, from the worst table entry it passes
PATH_KINDS = ("clean", "unsure", "misconception")


def _scored_records(generator: Generator, task: Task, problems: Sequence[Problem], params: SamplingParams,
                    strategy: str, desc: str) -> pd.DataFrame:
    if not problems:
        raise ValueError("no problems given")
    convs = [first_turn(p, task) for p in problems]  # as run_episodes writes turn 1: one cache for both
    comps = generator.generate(convs, params, desc=desc)
    flat = [(i, s, c) for i, row in enumerate(comps) for s, c in enumerate(row)]
    scores = generator.score([convs[i] for i, _, _ in flat], [c for _, _, c in flat], desc=f"{desc}: self-reward")
    rows = []
    for (i, s, comp), sc in zip(flat, scores):
        p = problems[i]
        r = records.row(p, s, 1, strategy, "intrinsic", comp, task.grade(p, comp.text), task=task)
        r.update(self_reward=sc.total, self_reward_mean=sc.mean, reward_tokens=sc.tokens,
                 temperature=params.temperature)
        rows.append(r)
    return pd.DataFrame(rows, columns=COLUMNS + list(task.label_columns) + REWARD_COLUMNS + ["temperature"])


def sample_pool(generator: Generator, task: Task, problems: Sequence[Problem], params: SamplingParams) -> pd.DataFrame:
    """`params.n` samples per problem as records (turn 1, `strategy` "pool"), each with its
    self-reward columns (`REWARD_COLUMNS`, teacher-forced at T = 1) and the sampling
    `temperature`. Sample i of a problem is the same whatever n is (`SamplingParams.key`), so
    a pool of 32 holds the pool of 8 as its first 8 samples."""
    if params.temperature == 0:
        raise ValueError("sample_pool(params=...): temperature 0 gives n copies of one answer; "
                         "use greedy_pool for the greedy attempt and a temperature > 0 here")
    return _scored_records(generator, task, problems, params, "pool", "sharpening pool")


def greedy_pool(generator: Generator, task: Task, problems: Sequence[Problem], max_new_tokens: int = 256,
                seed: int = 0) -> pd.DataFrame:
    """The greedy attempt (T = 0, one sample per problem) as records with self-reward columns."""
    params = SamplingParams(temperature=0.0, n=1, max_new_tokens=max_new_tokens, seed=seed)
    return _scored_records(generator, task, problems, params, "greedy", "greedy")


def gold_path_kind(problem: Problem, world) -> str:
    """The class of a toy problem from its clean solution: "misconception" if a line of it looks
    up a misconception entry of the world's table, else "unsure" if one looks up an unsure
    entry, else "clean". A property of the world and the problem, not of any model."""
    from sclab.toy.world import error_table, parse_question, solve

    table = error_table(world)
    kinds = {table[(a, op, c)][0] for a, op, c, _ in solve(parse_question(problem.question), world.p)
             if (a, op, c) in table}
    return next((k for k in reversed(PATH_KINDS) if k in kinds), "clean")


def greedy_kind(greedy: pd.DataFrame) -> pd.Series:
    """Each problem's class from its greedy attempt (index problem_id): "right", or the
    `error_kind` label of its first wrong line ("other" where a wrong attempt has none; a
    lucky right answer counts as right)."""
    records.validate(greedy, ["correct", "error_kind"], "greedy records")
    if greedy["problem_id"].duplicated().any():
        raise ValueError("greedy records must hold one attempt per problem (greedy_pool's table)")
    kind = greedy["error_kind"].astype(object).where(greedy["error_kind"].notna(), "other")
    kind = kind.where(~greedy["correct"].astype(bool), "right")
    return pd.Series(kind.to_numpy(), index=greedy["problem_id"].to_numpy(), name="greedy_kind")


def problem_classes(problems: Sequence[Problem], world) -> pd.Series:
    """`gold_path_kind` of every problem (index problem_id), the split `sclab.sharpening` curves take."""
    return pd.Series([gold_path_kind(p, world) for p in problems], index=[p.id for p in problems], name="path_kind")
