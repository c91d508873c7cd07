"""GSM8K (Cobbe et al., arXiv 2110.14168): 1,319 grade-school word problems, integer answers.

Graded with sclab.grading (math_equal on the extracted answer, rule recorded); `grade_all`
also reports lm-eval-harness's strict and flexible extractions, which can disagree a lot
on one run (REFERENCES.md, Sampling metrics).

    >>> from sclab.tasks.gsm8k import GSM8K
    >>> task = GSM8K(); p = task.problems(1)[0]; task.grade(p, p.meta["solution"]).correct
    True
"""
from __future__ import annotations

import os

from sclab.grading import grade_math, gsm8k_flexible, gsm8k_match, gsm8k_strict

from .base import Grade, Problem, Task
from .files import load_rows


class GSM8K(Task):
    name = "gsm8k"
    dialect = "chat"
    # asks for the reference solutions' own final line, which lm-eval's strict regex reads
    answer_format = 'End your response with a final line of the form "#### <number>".'
    final_answer = "a single numerical number, in the form \\boxed{answer}."  # Huang et al.'s GSM8K wording

    def __init__(self, path: str | os.PathLike | None = None, split: str = "test"):
        """`path`: an explicit JSONL file for `split`; default data_dir()/gsm8k/{split}.jsonl,
        else the hub's openai/gsm8k."""
        self.path = path
        self.split = split
        self._rows: dict[str, list[dict]] = {}  # split -> rows, loaded on first use
        self.source: dict[str, str] = {}  # split -> the file or hub name the rows came from

    def rows(self, split: str) -> list[dict]:
        if split not in self._rows:
            if self.path is not None and split != self.split:
                raise ValueError(f"GSM8K was given path={self.path!r} for split {self.split!r}, not {split!r}")
            self._rows[split], self.source[split] = load_rows(
                f"gsm8k/{split}.jsonl", "openai/gsm8k", "main", split, path=self.path)
        return self._rows[split]

    def problems(self, n: int | None = None, split: str | None = None, seed: int = 0) -> list[Problem]:
        """All problems in file order, or `n` drawn with random.Random(seed), still in file order."""
        split = split or self.split
        rows = self.rows(split)
        indices = self.subset(len(rows), n, seed)
        return [
            Problem(
                id=f"gsm8k/{split}/{i}",
                question=rows[i]["question"],
                gold=rows[i]["answer"].split("####")[-1].strip().replace(",", ""),  # "1,450,000" -> "1450000"
                meta={"solution": rows[i]["answer"]},
            )
            for i in indices
        ]

    def grade(self, problem: Problem, text: str) -> Grade:
        return grade_math(problem.gold, text)

    def grade_all(self, problem: Problem, text: str) -> dict[str, dict]:
        """lm-eval's strict and flexible verdicts beside sclab's math-verify one, for one response."""
        strict, flexible = gsm8k_strict(text), gsm8k_flexible(text)
        grade = self.grade(problem, text)
        return {
            "strict": {"extracted": strict, "correct": gsm8k_match(problem.gold, strict)},
            "flexible": {"extracted": flexible, "correct": gsm8k_match(problem.gold, flexible)},
            "math_verify": {"extracted": grade.extracted, "correct": grade.correct, "how": grade.how},
        }

    def extraction_report(self, records, problems) -> dict[str, dict[str, float]]:
        """Accuracy and extraction-failure rate of each extraction rule on the same responses
        (a records table with problem_id and response): how much of a score - or of a
        self-correction Δ - is extraction rather than reasoning (REFERENCES.md: 0.20 vs 0.79
        reported for one chat model)."""
        by_id = {p.id: p for p in problems}
        out = {k: {"accuracy": 0.0, "extraction_failure_rate": 0.0} for k in ("strict", "flexible", "math_verify")}
        n = 0
        for pid, text in zip(records["problem_id"], records["response"]):
            verdicts = self.grade_all(by_id[pid], text or "")
            n += 1
            for k, v in verdicts.items():
                out[k]["accuracy"] += bool(v["correct"])
                out[k]["extraction_failure_rate"] += v["extracted"] is None
        return {k: {m: x / max(1, n) for m, x in v.items()} for k, v in out.items()}
