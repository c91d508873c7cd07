"""MBPP (Austin et al., arXiv 2108.07732): 974 crowd-sourced Python problems, each with three
assert tests; the test split is task ids 11-510. The sanitized subset (427 problems, reworded
prompts, some tests fixed) is `MBPP(sanitized=True)`. Self-Debug (arXiv 2304.05128) and SCoRe
(arXiv 2409.12917) report on MBPP.

The question is the paper's prompt: the task and its tests, so the model knows the function's
name. A response holding only the body is put under the reference solution's signature.

    >>> from sclab.tasks.mbpp import MBPP
    >>> task = MBPP(); p = task.problems(1)[0]; task.grade(p, p.meta["solution"]).correct  # doctest: +SKIP
    True
"""
from __future__ import annotations

import ast
import json
import os
import re
import warnings
from pathlib import Path

from sclab.sandbox import Limits

from .base import Problem
from .code import CodeTask, defines
from .files import ENV_VAR, data_dir, load_from_hub, read_jsonl

# task-id ranges of the paper's splits (the sanitized subset keeps them)
SPLITS = {"prompt": range(1, 11), "test": range(11, 511), "validation": range(511, 601), "train": range(601, 975)}
SANITIZED_FILE = "mbpp/sanitized-mbpp.UNVERIFIED.json"


def _parse(code: str) -> ast.Module:
    with warnings.catch_warnings():  # some references have invalid escapes ("\d" in a str)
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(code)


def entry_point(code: str, tests: list[str]) -> str:
    """The function the tests call: the first name called in them that `code` defines at top level."""
    defined = [n.name for n in _parse(code).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    calls = re.findall(r"\b([A-Za-z_]\w*)\s*\(", "\n".join(tests))
    for name in calls:
        if name in defined:
            return name
    raise ValueError(f"no function the tests call is defined by the reference code (defined: {defined})")


def signature(code: str, name: str) -> str:
    """The reference's `def name(...):` header (its lines up to the body), for a response
    that writes only the body."""
    node = next(n for n in _parse(code).body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name)
    lines = code.splitlines()
    if node.body[0].lineno > node.lineno:
        return "\n".join(lines[node.lineno - 1:node.body[0].lineno - 1]).rstrip()
    header = lines[node.lineno - 1][:node.body[0].col_offset].rstrip()  # a one-line def
    return header


def read_rows(path: Path) -> list[dict]:
    """A JSON array (the sanitized file as released) or JSON lines."""
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if text.lstrip().startswith("[") else read_jsonl(path)


class MBPP(CodeTask):
    name = "mbpp"

    def __init__(self, path: str | os.PathLike | None = None, split: str = "test", sanitized: bool = False,
                 limits: Limits | None = None, workers: int = 1):
        """`path`: an explicit file (mbpp.jsonl layout, or the sanitized JSON/JSONL); default
        data_dir()/mbpp/mbpp.jsonl (or the sanitized file), else the hub's
        google-research-datasets/mbpp ("full" / "sanitized"). `split`: prompt, test, validation
        or train, by task id. `limits`, `workers`: see CodeTask."""
        super().__init__(limits, workers)
        if split not in SPLITS:
            raise ValueError(f"unknown MBPP split {split!r}; valid splits: {', '.join(SPLITS)}")
        self.path, self.split, self.sanitized = path, split, bool(sanitized)
        self._rows: list[dict] | None = None
        self.source: str | None = None

    def rows(self) -> list[dict]:
        """Every row of the file (all splits), in task-id order."""
        if self._rows is None:
            relative = SANITIZED_FILE if self.sanitized else "mbpp/mbpp.jsonl"
            if self.path is not None:
                path = Path(self.path)
                if not path.is_file():
                    raise FileNotFoundError(f"{path} does not exist")
            else:
                try:
                    path = data_dir() / relative  # a set but missing SCLAB_DATA_DIR raises ValueError
                except FileNotFoundError:
                    path = None
            if path is not None and path.is_file():
                rows, self.source = read_rows(path), str(path)
            else:
                rows, self.source = self._hub(relative)
            self._rows = sorted(rows, key=lambda r: r["task_id"])
        return self._rows

    def _hub(self, relative: str) -> tuple[list[dict], str]:
        config = "sanitized" if self.sanitized else "full"
        try:  # the hub keeps each split apart: read them all, splits are by task id here
            rows = [r for s in SPLITS for r in load_from_hub("google-research-datasets/mbpp", config, s)]
        except Exception as e:  # ImportError (no `datasets`), no network, ...
            raise FileNotFoundError(f"cannot load {relative}: not in the data directory, and the hub copy "
                                    f"google-research-datasets/mbpp ({config}) failed ({type(e).__name__}: {e}); "
                                    f"set {ENV_VAR} to the folder holding {relative}") from e
        return rows, f"hub:google-research-datasets/mbpp/{config}"

    def problems(self, n: int | None = None, split: str | None = None, seed: int = 0) -> list[Problem]:
        """The split's problems in task-id order, or `n` drawn with random.Random(seed), still in order."""
        split = split or self.split
        if split not in SPLITS:
            raise ValueError(f"unknown MBPP split {split!r}; valid splits: {', '.join(SPLITS)}")
        rows = sorted((r for r in self.rows() if r["task_id"] in SPLITS[split]), key=lambda r: r["task_id"])
        return [self._problem(rows[i]) for i in self.subset(len(rows), n, seed)]

    def _problem(self, r: dict) -> Problem:
        code = r["code"].replace("\r\n", "\n")
        tests = [t.replace("\r\n", "\n") for t in r["test_list"]]
        setup = "\n".join(r["test_imports"]) if "test_imports" in r else r.get("test_setup_code", "")
        name = entry_point(code, tests)
        text = r["prompt"] if "prompt" in r else r["text"]
        listed = "\n".join(tests)
        return Problem(
            id=f"mbpp/{r['task_id']}",
            # the MBPP paper's prompt (Austin et al., section 2.2)
            question=f"You are an expert Python programmer, and here is your task: {text} "
                     f"Your code should pass these tests:\n\n{listed}",
            gold=code,
            meta={"entry_point": name, "signature": signature(code, name), "task_id": r["task_id"],
                  "test": (setup.replace("\r\n", "\n") + "\n" if setup else "") + listed + "\n",
                  "prefix": "", "solution": f"```python\n{code}\n```"},
        )

    def _prefix(self, problem: Problem, code: str) -> str:
        """A whole function needs nothing before it; a body goes under the reference's signature."""
        return "" if defines(code, problem.meta["entry_point"]) else problem.meta["signature"] + "\n"
