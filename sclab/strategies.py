r"""Strategies by name: what the user says between attempts, phrased from the episode so far.

Each strategy is a short list of user messages (the model answers each; its answer to the
last one is the new attempt) in two dialects: "chat" (the papers' wording for chat models,
with `{answer_format}` replaced by the task's answer-format sentence, `{final_answer}` by its
noun phrase for Huang et al.'s wording, and `{question}` by the question) and "toy" (the toy
world's words, `sclab.toy.world.FOLLOWUPS`, whose effect is set by the world's documented
priors, `sclab.toy.registry.ToyWorld`).

`Strategy.turns(task, problem, history)` phrases them after `history`, the episode so far: a
sequence of `Attempt` (each earlier attempt's text, its `Grade` and, where a critic was asked,
the critic's verdict). Most strategies say the same words after any attempt (`static`);
`execution-feedback` shows the last grade's `detail` (a failing unit test, Self-Debug) and
`critic-feedback` a critic's verdict. A strategy also decides whether it speaks at all after
an attempt (`applies`: one that reads the gold label speaks only after a wrong attempt, a
critic's gate only after an objection) and whether the model's own feedback ends the episode
(`stops`, Self-Refine); `sclab.rollout.run_episodes` asks both.

    >>> from sclab.strategies import Attempt, get_strategy
    >>> get_strategy("huang-review").messages("toy", question="7 ; +3 -5 ; 2 ?")
    ['check 7 ; +3 -5 ; 2 ?']
    >>> from sclab.tasks import Grade, Problem, Task
    >>> failed = Attempt("def f(x): return x", Grade(False, None, "tests", detail="assert f(2) == 3 # output: 2"))
    >>> print(get_strategy("execution-feedback").turns(Task(), Problem("p", "Write f.", ""), [failed])[0])
    The code above fails the given unit test:
    assert f(2) == 3 # output: 2
    Please fix the Python code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Sequence

from sclab.tasks.base import Grade

_RAW = re.compile(r"(\{detail\}|\{critique\})")   # texts a template shows verbatim


def _fill(template: str, raw: dict[str, str], **fields) -> str:
    """`template` with `fields` filled in, runs of spaces or tabs collapsed to one (an empty
    answer-format line leaves no double space behind), and the `raw` texts ({detail},
    {critique}: test output, a critic's words) inserted as they are, their spacing kept."""
    parts = _RAW.split(template)
    return "".join(raw[p[1:-1]].strip() if _RAW.fullmatch(p) else re.sub(r"[ \t]{2,}", " ", p.format(**fields))
                   for p in parts).strip()


@dataclass(frozen=True)
class Attempt:
    """One attempt of an episode as a strategy sees it: the response, its grade (with the
    grader's `detail`, e.g. a failing test) and the critic's verdict on it where a critic was
    asked (`critique`; "" = no objection, or no critic)."""

    text: str
    grade: Grade
    critique: str = ""


@dataclass(frozen=True)
class Strategy:
    name: str
    cite: str
    chat: tuple[str, ...]
    toy: tuple[str, ...]
    # reads the gold label (oracle feedback, a grader's test output): it speaks only after a wrong
    # attempt (`applies`), runs with oracle stopping, and is an upper bound, not self-correction
    needs_gold: bool = False
    # intrinsic stop (Self-Refine): if the model's own answer to an intermediate step matches,
    # the episode keeps the previous attempt instead of asking for a refinement (`stops`)
    stop_if: str | None = None
    note: str = ""

    reads_history: ClassVar[bool] = False   # its words depend on the last attempt (a grade's detail, a critique)
    needs_critic: ClassVar[bool] = False    # it shows a critic's verdict: run_episodes(..., critic=fn)

    def _templates(self, dialect: str) -> tuple[str, ...]:
        if dialect not in ("chat", "toy"):
            raise ValueError(f"dialect must be 'chat' or 'toy', got {dialect!r}")
        msgs = self.chat if dialect == "chat" else self.toy
        if not msgs:
            raise ValueError(f"strategy {self.name!r} has no {dialect}-dialect wording ({self.note})")
        return msgs

    def messages(self, dialect: str, answer_format: str = "", question: str = "",
                 final_answer: str = "in the form \\boxed{answer}.", *, detail: str = "",
                 critique: str = "") -> list[str]:
        """The strategy's user messages in `dialect`, filled in (`detail`, `critique`: the texts
        a history-aware strategy shows, verbatim)."""
        raw = {"detail": detail, "critique": critique}
        return [_fill(m, raw, answer_format=answer_format, question=question, final_answer=final_answer)
                for m in self._templates(dialect)]

    def turns(self, task, problem, history: Sequence[Attempt] = ()) -> list[str]:
        """The user turns said to `task`'s model at `problem` after `history` (the episode so far,
        attempt 1 first), one per step: the single place episodes, training sets, probes and RL
        rollouts phrase them. A static strategy's turns depend on the problem alone."""
        return self.messages(task.dialect, task.answer_format, problem.question, task.final_answer)

    def applies(self, history: Sequence[Attempt]) -> bool:
        """Whether the strategy speaks after `history`; where it does not, the last attempt
        stands. One that reads the gold label speaks only after a wrong attempt."""
        return not (self.needs_gold and history and history[-1].grade.correct)

    def stops(self, feedback: str) -> bool:
        """Whether the model's own answer to an intermediate step ends the episode (Self-Refine's
        "It is correct."): then the previous attempt is kept."""
        return self.stop_if is not None and re.search(self.stop_if, feedback, re.IGNORECASE) is not None

    @property
    def static(self) -> bool:
        """The same turns after any attempt, always said, never stopped early: what a two-attempt
        RL rollout or a second-attempt probe can inject (no gold label, history, critic or stop)."""
        return not (self.needs_gold or self.reads_history or self.needs_critic or self.stop_if)

    @property
    def intrinsic(self) -> bool:
        """Self-correction proper: the model alone, without the gold label or an outside critic."""
        return not (self.needs_gold or self.needs_critic)

    def _last(self, history: Sequence[Attempt]) -> Attempt:
        if not history:
            raise ValueError(f"strategy {self.name!r} phrases its turn from the last attempt: pass the episode so "
                             f"far (history: a sequence of sclab.strategies.Attempt)")
        return history[-1]


@dataclass(frozen=True)
class ExecutionFeedback(Strategy):
    """Execution feedback: the last grade's `detail` (the failing unit test with its expected and
    actual output) in the unit-test wording; the right/wrong-only wording `simple` where the
    grader gave no detail."""

    simple: tuple[str, ...] = ()
    reads_history: ClassVar[bool] = True

    def turns(self, task, problem, history: Sequence[Attempt] = ()) -> list[str]:
        detail = self._last(history).grade.detail.strip()
        if detail:
            return self.messages(task.dialect, task.answer_format, problem.question, task.final_answer, detail=detail)
        self._templates(task.dialect)   # a dialect without wording fails here too
        return [_fill(m, {}, answer_format=task.answer_format, question=problem.question,
                      final_answer=task.final_answer) for m in self.simple]


@dataclass(frozen=True)
class CriticFeedback(Strategy):
    """A critic's verdict on the last attempt (`Attempt.critique`, filled by
    `run_episodes(..., critic=fn)`), shown before the next attempt; an attempt the critic does
    not object to (critique "") stands, so a critic that answers only "" or an objection makes
    this a verifier-gated retry."""

    reads_history: ClassVar[bool] = True
    needs_critic: ClassVar[bool] = True

    def applies(self, history: Sequence[Attempt]) -> bool:
        return super().applies(history) and bool(self._last(history).critique.strip())

    def turns(self, task, problem, history: Sequence[Attempt] = ()) -> list[str]:
        critique = self._last(history).critique.strip()
        if not critique:
            raise ValueError(f"strategy {self.name!r}: the last attempt has no critique (the critic did not object, "
                             f"so the strategy does not apply to it: see applies())")
        return self.messages(task.dialect, task.answer_format, problem.question, task.final_answer, critique=critique)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in [
    Strategy(
        "retry", "a plain second attempt (the toy world's neutral retry turn)",
        chat=("Please solve the problem again. {answer_format}",),
        toy=("again {question}",),
    ),
    Strategy(
        "huang-review", "Huang et al., Large Language Models Cannot Self-Correct Reasoning Yet, arXiv 2310.01798",
        chat=("Review your previous answer and find problems with your answer.",
              "Based on the problems you found, improve your answer. Please reiterate your answer, "
              "with your final answer {final_answer}"),
        toy=("check {question}",),  # the toy world has no review step: its nearest turn is the critical re-check
        note="two user turns: review, then improve; the answer to the second is the new attempt",
    ),
    Strategy(
        "self-refine", "Madaan et al., Self-Refine: Iterative Refinement with Self-Feedback, arXiv 2303.17651",
        chat=("Give feedback on your previous answer: check each step. If everything is correct, "
              "say exactly \"It is correct.\"",
              "Refine your answer using your feedback. {answer_format}"),
        toy=("check {question}",),
        stop_if=r"\bit is correct\b",
        note="feedback then refine; stops (keeps the answer) when the model's own feedback says it is correct",
    ),
    Strategy(
        "cct-reask", "Yang et al., Confidence v.s. Critique, arXiv 2412.19513 (released code: the second turn repeats the question)",
        chat=("{question}\n{answer_format}",),
        toy=("again {question}",),
    ),
    Strategy(
        "cct-confident", "a confident re-ask (prompt variant shifting the CL-CS trade-off, arXiv 2412.19513)",
        chat=("{question}\nYour previous answer is probably correct: keep it unless you find a clear mistake. "
              "{answer_format}",),
        toy=("confirm {question}",),
    ),
    Strategy(
        "cct-critical", "a critical re-ask (prompt variant shifting the CL-CS trade-off, arXiv 2412.19513)",
        chat=("{question}\nYour previous answer may contain mistakes: check every step carefully and correct "
              "any error. {answer_format}",),
        toy=("check {question}",),
    ),
    Strategy(
        "score-instruction", "Kumar et al., SCoRe, arXiv 2409.12917 (the self-correction instruction, MATH)",
        chat=("There might be an error in the solution above because of lack of understanding of the question. "
              "Please correct the error, if any, and rewrite the solution. {answer_format}",),
        toy=("check {question}",),
    ),
    Strategy(
        "are-you-sure", "sycophancy probe (Sharma et al. arXiv 2310.13548; Huang et al. arXiv 2310.01798)",
        chat=("Are you sure? Think carefully and answer again. {answer_format}",),
        toy=("sure ? {question}",),
        note="on the toy world its effect is set by ToyWorld.doubt_change_rate (the doubt prior)",
    ),
    Strategy(
        "oracle-feedback", "oracle feedback, as criticised in Huang et al. arXiv 2310.01798",
        chat=("Your answer is incorrect. Please try again. {answer_format}",),
        toy=("wrong again {question}",),
        needs_gold=True,
        note="uses the gold label: an upper bound, not self-correction",
    ),
    ExecutionFeedback(
        "execution-feedback", "Chen et al., Teaching Large Language Models to Self-Debug, arXiv 2304.05128 "
        "(the unit-test feedback: the failing test with its expected and actual output; simple feedback without)",
        chat=("The code above fails the given unit test:\n{detail}\nPlease fix the Python code. {answer_format}",),
        simple=("The code above is wrong. Please fix it. {answer_format}",),
        toy=(),
        needs_gold=True,
        note="the toy world has no programs or unit tests to report on, and its one verdict word, 'wrong', is "
             "oracle-feedback's; the grader's tests decide and speak (Grade.detail), so it runs with oracle "
             "stopping, as Self-Debug stops once the tests pass",
    ),
    CriticFeedback(
        "critic-feedback", "critique in the loop: an outside critic's verdict on the last attempt (a critic model, a "
        "verifier, a person) shown before the next one, e.g. GLoRe's refinement from a verifier's flagged step "
        "(arXiv 2402.10963)",
        chat=("A reviewer checked your previous answer and says:\n{critique}\nRevise your answer using this "
              "feedback. {answer_format}",),
        # the toy world has no words for a critique's text: an objection is said as its verdict word
        # "wrong", after which the toy model makes a fresh attempt (a prior of the world), so on the
        # toy world this is a verifier-gated retry whose gain is set by the critic's precision
        toy=("wrong again {question}",),
        note="run_episodes(..., critic=fn) fills each attempt's critique; an attempt with none stands",
    ),
]}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise KeyError(f"unknown strategy {name!r}; valid strategies: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name]
