"""Problems, grades and the Task base class every benchmark and toy task derives from.

Modelled on nanochat's Task: a small class with `problems()`, `grade(problem, text)` and
`reward(...)` (TRL's reward contract), one small file per benchmark.

    >>> from sclab.tasks import get_task
    >>> task = get_task("arith"); p = task.problems(1)[0]; task.grade(p, p.meta["solution"]).correct
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class Problem:
    """One question with its gold answer. `meta` carries task-specific extras (a reference solution, n, ...)."""

    id: str
    question: str
    gold: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Grade:
    """The verdict on one response. `extracted` is None when no answer could be found
    (an extraction failure, counted and reported, never silently scored); `how` names the
    rule that extracted it (e.g. "boxed", "####", "answer-is", "math-verify", "last-number",
    "toy-final"); `why` says how the verdict was reached (e.g. "exact", "math-verify",
    "different-type", "timeout"; sclab.grading.VERDICTS). `detail` is free text the grader
    gives for the next turn to show (a failing unit test with its expected and actual output;
    "" where it has none), read by history-aware strategies (`sclab.strategies`, e.g.
    execution-feedback). Both are notes, left out of equality and repr: two grades with the
    same verdict, answer and rule are equal."""

    correct: bool
    extracted: str | None
    how: str
    why: str = field(default="", compare=False, repr=False)
    detail: str = field(default="", compare=False, repr=False)

    @property
    def failed_extraction(self) -> bool:
        return self.extracted is None


class Task:
    """Base class: a named set of problems plus an exact grader.

    `dialect` says how a second turn is phrased for this task: "toy" (the toy world's own
    words) or "chat" (English instructions for chat models)."""

    name: str = "task"
    dialect: str = "chat"
    # the format sentence appended to questions / retries for chat models (task-specific)
    answer_format: str = ""
    # the same as a noun phrase, for prompts that end "... with your final answer {final_answer}"
    # (Huang et al. arXiv 2310.01798 used this phrase on GSM8K)
    final_answer: str = "in the form \\boxed{answer}."
    # extra record columns `label` fills for every attempt (the toy world's error labels); a
    # kept answer inherits `inherited_labels` from the attempt it keeps
    label_columns: tuple[str, ...] = ()
    inherited_labels: tuple[str, ...] = ()

    def problems(self, n: int | None = None, split: str = "test", seed: int = 0) -> list[Problem]:
        raise NotImplementedError

    def label(self, problem: Problem, text: str) -> dict | None:
        """Ground-truth labels of one attempt (columns `label_columns`), where the task knows
        them; None for benchmarks, whose errors nobody labelled."""
        return None

    # what `inject_error` injects, counted by RISE-style pair builders (`sclab.train.dpo`); "" = no injector
    error_injector: str = ""

    def inject_error(self, text: str, rng) -> str | None:
        """A copy of attempt `text` with one error injected (RISE's synthetic mistakes, arXiv
        2407.18219), or None where none can be injected into it; a task without an injector
        (`error_injector == ""`, the base class) returns None for every text."""
        return None

    def prompt(self, problem: Problem) -> str:
        """The first user message for `problem`: the question, then the answer-format sentence."""
        return problem.question + ("\n" + self.answer_format if self.answer_format else "")

    @staticmethod
    def subset(total: int, n: int | None, seed: int) -> list[int]:
        """Indices of all `total` items, or of `n` drawn with random.Random(seed), in file order."""
        import random

        return list(range(total)) if n is None else sorted(random.Random(seed).sample(range(total), min(n, total)))

    def grade(self, problem: Problem, text: str) -> Grade:
        raise NotImplementedError

    def reward(self, prompts: Sequence[Any], completions: Sequence[Any], problem: Sequence[Problem] | None = None,
               **kwargs) -> list[float | None]:
        """TRL's reward contract: 1.0 if the completion is graded correct, else 0.0.

        `problem` is a dataset column of Problems (TRL forwards extra columns as kwargs)."""
        if problem is None:
            raise ValueError("reward() needs the `problem` column (a list of Problem) among the dataset columns")
        out = []
        for prob, comp in zip(problem, completions):
            text = comp if isinstance(comp, str) else comp[-1]["content"]
            out.append(1.0 if self.grade(prob, text).correct else 0.0)
        return out
