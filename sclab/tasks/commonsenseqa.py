"""CommonsenseQA (Talmor et al., arXiv 1811.00937): 5-way multiple choice; Huang et al.
(arXiv 2310.01798) report GPT-3.5 falling from 75.8 to 38.1 after intrinsic self-correction.

The answer is a letter A-E. Extraction rules, in order: "answer is (X)" / "answer: X",
`\\boxed{X}`, a final "(X)", else the last standalone capital A-E; each records its rule.

    >>> from sclab.tasks.commonsenseqa import CommonsenseQA, extract_choice
    >>> extract_choice("So the answer is (B).")
    ('B', 'answer-is')
"""
from __future__ import annotations

import os
import re

from .base import Grade, Problem, Task
from .files import load_rows

LETTERS = "ABCDE"
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*\(?([A-E])\)?(?![A-Za-z])", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{\s*\(?([A-E])\)?\s*\}")
_PAREN = re.compile(r"\(([A-E])\)")
_BARE = re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])")


def extract_choice(text: str) -> tuple[str | None, str]:
    """(letter, rule) for a response; (None, "none") if no choice can be found."""
    for rule, pat in (("answer-is", _ANSWER_IS), ("boxed", _BOXED), ("paren", _PAREN), ("last-letter", _BARE)):
        found = pat.findall(text)
        if found:
            return found[-1].upper(), rule
    return None, "none"


class CommonsenseQA(Task):
    name = "commonsenseqa"
    dialect = "chat"
    answer_format = 'End your response with "The answer is (X)." where X is the letter of your choice.'
    final_answer = "as one of the letters A-E, in the form \"The answer is (X).\""

    def __init__(self, path: str | os.PathLike | None = None, split: str = "validation"):
        """`path`: an explicit JSONL file (HF field layout: question, choices{label,text}, answerKey);
        default data_dir()/commonsenseqa/dev_rand_split*.jsonl, else the hub's tau/commonsense_qa."""
        self.path, self.split = path, split
        self._rows: list[dict] | None = None

    def rows(self) -> list[dict]:
        if self._rows is None:
            rel = "commonsenseqa/dev_rand_split.UNVERIFIED_hf_format.jsonl"
            self._rows, self.source = load_rows(rel, "tau/commonsense_qa", None, self.split, path=self.path)
        return self._rows

    def problems(self, n: int | None = None, split: str | None = None, seed: int = 0) -> list[Problem]:
        rows = self.rows()
        out = []
        for i in self.subset(len(rows), n, seed):
            r = rows[i]
            choices = "\n".join(f"({l}) {t}" for l, t in zip(r["choices"]["label"], r["choices"]["text"]))
            out.append(Problem(id=f"commonsenseqa/{self.split}/{i}", question=f"{r['question']}\n{choices}",
                               gold=r["answerKey"], meta={"choices": dict(zip(r["choices"]["label"], r["choices"]["text"]))}))
        return out

    def grade(self, problem: Problem, text: str) -> Grade:
        letter, rule = extract_choice(text)
        return Grade(letter == problem.gold, letter, rule)
