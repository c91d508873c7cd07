"""Problems, grades and the Task base class every benchmark and toy task derives from.

Modelled on nanochat's Task: a small class with `problems()`, `grade(problem, text)` and
`reward(...)` (TRL's reward contract; `reward_function(problems)` makes one that TRL's trainers
call with a dataset's `problem_id` column), one small file per benchmark.

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
        """TRL's reward contract over Problem objects: 1.0 if the completion is graded correct, else 0.0.

        `problem` is one Problem per completion. A `datasets` column cannot hold Problems: to train
        with TRL, give the dataset a `problem_id` column and use `reward_function(problems)`."""
        if problem is None:
            hint = " (a problem_id column: use task.reward_function(problems))" if "problem_id" in kwargs else ""
            raise ValueError(f"reward() needs `problem`, one Problem per completion{hint}")
        if len(problem) != len(completions):
            raise ValueError(f"reward(): {len(completions)} completions but {len(problem)} problems")
        return [1.0 if self.grade(prob, completion_text(comp)).correct else 0.0
                for prob, comp in zip(problem, completions)]

    def reward_function(self, problems: Sequence[Problem], name: str | None = None) -> "TaskReward":
        """A TRL reward function over `problems`: `f(prompts, completions, problem_id, **kwargs)`.

        TRL's GRPOTrainer passes every dataset column besides the prompt to reward functions as a
        keyword list (trl/trainer/grpo_trainer.py `_calculate_rewards`); the dataset carries the
        problems' string ids in a `problem_id` column and they resolve through these problems.
        Completions are strings or conversational message lists. TRL logs the rewards as
        `rewards/<name>/mean`, name `<task>_correct` unless given.

        >>> from sclab.tasks import get_task
        >>> task = get_task("arith"); probs = task.problems(2)
        >>> reward = task.reward_function(probs)
        >>> reward.__name__
        'arith_correct'
        >>> right, wrong = probs[0].meta["solution"], [{"role": "assistant", "content": "no answer"}]
        >>> reward(prompts=[None, None], completions=[right, wrong], problem_id=[probs[0].id, probs[1].id])
        [1.0, 0.0]
        """
        return TaskReward(self, problems, name or f"{self.name}_correct")


def completion_text(completion: Any) -> str:
    """The text of a completion as TRL passes it: a str, or conversational (a list of messages,
    the last one the model's)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion and isinstance(completion[-1], dict) \
            and isinstance(completion[-1].get("content"), str):
        return completion[-1]["content"]
    raise TypeError(f"a completion must be a str or a list of messages ending with {{'content': str}}, "
                    f"got {completion!r:.80}")


class TaskReward:
    """`Task.reward_function`'s result: a picklable callable with a `__name__` (TRL logs by name)."""

    def __init__(self, task: Task, problems: Sequence[Problem], name: str):
        self.task, self.__name__ = task, name
        self.by_id: dict[str, Problem] = {}
        for p in problems:
            if p.id in self.by_id and self.by_id[p.id] != p:
                raise ValueError(f"reward_function(): two different problems share the id {p.id!r}")
            self.by_id[p.id] = p
        if not self.by_id:
            raise ValueError("reward_function(): no problems given")

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], problem_id: Sequence[str] | None = None,
                 **kwargs) -> list[float]:
        if problem_id is None:
            raise ValueError(f"{self.__name__}: needs the `problem_id` column (one id per completion) among the "
                             f"dataset's columns; got columns {sorted(kwargs)}")
        unknown = [i for i in problem_id if i not in self.by_id]
        if unknown:
            raise KeyError(f"{self.__name__}: problem id {unknown[0]!r} is not one of the {len(self.by_id)} problems "
                           f"this reward function was built from (e.g. {next(iter(self.by_id))!r})")
        return self.task.reward(prompts, completions, problem=[self.by_id[i] for i in problem_id])

    def __repr__(self) -> str:
        return f"<reward {self.__name__}: {self.task.name}, {len(self.by_id)} problems>"
