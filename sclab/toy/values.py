"""The exact values of a toy attempt's prefixes: what a step verifier should predict.

The world knows its own errors, so for every prefix of an attempt (its first j lines) two values
are exact, and they are the targets GLoRe (arXiv 2402.10963) says its two verifiers approximate:

- V*(prefix) = 1 if none of the first j lines is wrong, else 0: whether the prefix can still be
  completed to a right solution with every later line right (`sclab.toy.labels`' first wrong
  line). The SORM, trained on "any of K rollouts succeeds", approximates it;
- V^π(prefix) = the probability that the policy, sampling at T = 1 from the prefix, writes the
  gold continuation: on the toy a right solution is one exact text, so this is P(the remaining
  lines and the answer are all right), teacher-forced in one pass. It leaves out "lucky" hits
  (a later error that cancels an earlier one, reported by the labels) and is 0 after a wrong
  line. An outcome model trained on the policy's own final grades approximates it (pessimistic
  on prefixes: it charges the errors the policy will still make).

These values are the world's truth, used only to score verifiers: no verifier is trained on them.

    >>> from sclab.toy.world import ArithTask
    >>> t = ArithTask(); p = t.problems(1)[0]
    >>> v_star(p, p.meta["solution"], t.world)[:3]
    [1.0, 1.0, 1.0]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sclab.tasks.base import Problem
from sclab.toy.labels import label_attempt
from sclab.toy.registry import ToyWorld
from sclab.toy.world import extract_final, parse_lines, render


def v_star(problem: Problem, text: str, world: ToyWorld | None = None, n_steps: int | None = None) -> list[float]:
    """V* after each of the first `n_steps` lines of `text` (default: all its lines) and, last,
    at its end (= the attempt is right)."""
    lab = label_attempt(problem, text, world)
    n = len(parse_lines(text) or []) if n_steps is None else n_steps
    fw = lab["first_wrong"]
    vals = [1.0 if fw is None or fw > j else 0.0 for j in range(n)]
    return vals + [1.0 if extract_final(text) == problem.gold else 0.0]


def gold_continuation(problem: Problem, j: int) -> str:
    """The gold text after the first j lines (`"> r"` when j is every line)."""
    gold = parse_lines(problem.meta["solution"])
    if not 0 <= j <= len(gold):
        raise ValueError(f"gold_continuation: j must be in 0..{len(gold)}, got {j}")
    return render(gold[j:], int(problem.gold)) if j < len(gold) else f"> {problem.gold}"


def v_pi(generator, problems: Sequence[Problem], attempts, stars: Sequence[Sequence[float]]) -> list[list[float]]:
    """V^π at each step end of each attempt (`sclab.critique.steps.Attempted`; its step ends are
    its line ends): exp(log π(gold continuation | prefix)) where V* = 1, else 0. The value at the
    attempt's end is its outcome, as for V*."""
    tok = generator.tokenizer
    by_id = {p.id: p for p in problems}
    eos = generator.backend.eos_ids[:1]
    convs, comps, where = [], [], []
    out = [[0.0] * len(a.steps) + [float(s[-1])] for a, s in zip(attempts, stars)]
    for i, (a, s) in enumerate(zip(attempts, stars)):
        for j, pos in enumerate(a.steps):
            if j < len(s) - 1 and s[j] == 1.0:
                text = gold_continuation(by_id[a.problem_id], j + 1)
                convs.append(a.ids[:pos + 1])
                comps.append(list(tok(text, add_special_tokens=False)["input_ids"]) + eos)
                where.append((i, j))
    if convs:
        scored = generator.score(convs, comps, desc="V^π (gold continuations)")
        for (i, j), sc in zip(where, scored):
            out[i][j] = float(np.exp(sc.total))
    return out
