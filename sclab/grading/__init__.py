r"""Math grading: the final answer of a response, and whether it equals the gold.

A response's answer is found by the first rule that applies (extract.py: boxed, "final
answer is" after the box, "answer is", `####`, a bare one-line answer, math-verify's own
LaTeX/expression extraction, the last number) and the rule is recorded in `Grade.how`;
the answer is compared with the gold (compare.py: normalised strings, decimal commas,
shapes - a tuple is never a number -, order, percents, then math-verify 0.9.0,
github.com/huggingface/Math-Verify) and how that was decided is in `Grade.why`. GSM8K is
also graded as lm-eval-harness does (lm_eval.py). Every math-verify call is time-bounded
from any thread (bounded.py).

    >>> from sclab.grading import grade_math, math_equal
    >>> math_equal("\\frac{3}{4}", "So the answer is $\\boxed{0.75}$."), math_equal("10, 4, 2", "4, 12, 2")
    (True, False)
    >>> grade_math("x \\geq 5", "Therefore $x \\ge 5$ is the solution.")
    Grade(correct=True, extracted='x \\ge 5', how='math-verify')
"""
from __future__ import annotations

from sclab.tasks.base import Grade

from .bounded import DEFAULT_TIMEOUT, TIMEOUTS, bounded
from .compare import VERDICTS, _bounded, _math_verify, compare_answers
from .extract import RULES, boxed_answer, extract_answer, extract_answer_with_rule, last_boxed
from .lm_eval import gsm8k_flexible, gsm8k_match, gsm8k_strict
from .normalize import Shape, comparable, normalize_answer, shape


def grade_math(gold: str, text: str, timeout: float = DEFAULT_TIMEOUT, ordered: bool | None = None) -> Grade:
    """Grade a whole response against a bare gold answer: correct, what was extracted, the
    rule (`how`) and how the comparison was decided (`why`). `ordered`: see compare_answers."""
    answer, rule = extract_answer_with_rule(text, timeout)
    if answer is None:
        return Grade(correct=False, extracted=None, how=rule, why="nothing extracted")
    correct, why = compare_answers(gold, answer, timeout, ordered)
    return Grade(correct=correct, extracted=answer, how=rule, why=why)


def math_equal(gold: str, prediction: str, timeout: float = DEFAULT_TIMEOUT, ordered: bool | None = None) -> bool:
    r"""Whether `prediction` (a whole response or a bare answer) equals the bare answer `gold`.

    >>> math_equal("1,000", "#### 1000"), math_equal("\\$18", "18")
    (True, True)
    """
    return grade_math(gold, prediction, timeout, ordered).correct


__all__ = ["grade_math", "math_equal", "compare_answers", "extract_answer", "extract_answer_with_rule",
           "normalize_answer", "shape", "comparable", "Shape", "boxed_answer", "last_boxed", "bounded",
           "gsm8k_strict", "gsm8k_flexible", "gsm8k_match", "TIMEOUTS", "DEFAULT_TIMEOUT", "RULES", "VERDICTS"]
