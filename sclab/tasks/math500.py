"""MATH500: the 500-problem test subset of MATH (Hendrycks et al., arXiv 2103.03874) chosen
for PRM800K (Lightman et al., arXiv 2305.20050); answers are LaTeX, graded with math-verify.

    >>> from sclab.tasks.math500 import MATH500
    >>> task = MATH500(); p = task.problems(1)[0]; task.grade(p, p.meta["solution"]).correct
    True
"""
from __future__ import annotations

import os

from sclab.grading import grade_math

from .base import Grade, Problem, Task
from .files import load_rows


class MATH500(Task):
    name = "math500"
    dialect = "chat"
    # the reference solutions box their answers, and extraction reads the last \boxed{} first
    answer_format = "Put your final answer within \\boxed{}."

    def __init__(self, path: str | os.PathLike | None = None, split: str = "test"):
        """`path`: an explicit JSONL file; default data_dir()/math500/test.jsonl, else the hub's
        HuggingFaceH4/MATH-500. MATH500 has only a test split."""
        self.path = path
        self.split = split
        self._rows: list[dict] | None = None
        self.source: str | None = None  # the file or hub name the rows came from

    def rows(self) -> list[dict]:
        if self._rows is None:
            self._rows, self.source = load_rows(
                f"math500/{self.split}.jsonl", "HuggingFaceH4/MATH-500", None, self.split, path=self.path)
        return self._rows

    def problems(self, n: int | None = None, split: str | None = None, seed: int = 0) -> list[Problem]:
        """All problems in file order, or `n` drawn with random.Random(seed), still in file order."""
        if split not in (None, self.split):
            raise ValueError(f"MATH500 has only the {self.split!r} split, not {split!r}")
        rows = self.rows()
        indices = self.subset(len(rows), n, seed)
        return [
            Problem(
                id=f"math500/{self.split}/{i}",
                question=rows[i]["problem"],
                gold=rows[i]["answer"],
                meta={"solution": rows[i]["solution"], "subject": rows[i]["subject"],
                      "level": rows[i]["level"], "unique_id": rows[i]["unique_id"]},
            )
            for i in indices
        ]

    def grade(self, problem: Problem, text: str) -> Grade:
        return grade_math(problem.gold, text)
