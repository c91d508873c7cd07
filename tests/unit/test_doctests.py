"""The docstring examples of every sclab module run, and are counted: a runner that finds none fails.

Modules are found by walking the package, so a new or split module is collected without an edit here.
Examples that load or build a toy model run with the smoke tier (`-m unit` stays model-free)."""
from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

import sclab

MODULES = sorted(m.name for m in pkgutil.walk_packages(sclab.__path__, "sclab."))
# a `>>>` line that starts an example; doctest drops comment-only prompts (`>>> # tuned = sft(...)`)
PROMPT = re.compile(r"^\s*>>> (?!\s*#)", re.M)
NEEDS_MODEL = re.compile(r"toy:|toy_model_path\(")
SKIP = doctest.OPTIONFLAGS_BY_NAME["SKIP"]
# 87 examples run at e00bdd3; the floor leaves room to drop a few with a reason, while a runner that
# stops finding them (or a package walk that misses a subpackage) falls far below
FLOOR = 80


def _doctests(name):
    return doctest.DocTestFinder().find(importlib.import_module(name))


def _examples(name):
    return [e for t in _doctests(name) for e in t.examples]


def _param(name):
    model = any(NEEDS_MODEL.search(e.source) for e in _examples(name))
    return pytest.param(name, marks=pytest.mark.smoke if model else pytest.mark.unit, id=name)


@pytest.mark.unit
@pytest.mark.parametrize("name", MODULES)
def test_every_example_is_visible_to_doctest(name):
    # an example in a docstring the finder cannot reach (a class built inside a function, a string that is
    # no docstring) would never run: every `>>>` of the source must be one of the examples found
    source = inspect.getsource(importlib.import_module(name))
    assert len(PROMPT.findall(source)) == len(_examples(name)), f"{name}: examples outside doctest's reach"


@pytest.mark.unit
def test_enough_examples_are_collected():
    assert {"sclab.metrics", "sclab.toy.world", "sclab.train.score"} <= set(MODULES)  # the walk enters subpackages
    run = sum(1 for name in MODULES for e in _examples(name) if not e.options.get(SKIP))
    assert run >= FLOOR, f"only {run} docstring examples found (floor {FLOOR})"


@pytest.mark.parametrize("name", [_param(n) for n in MODULES])
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(verbose=False)
    for test in _doctests(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    expected = sum(1 for e in _examples(name) if not e.options.get(SKIP))
    assert result.failed == 0 and result.attempted == expected, (name, result)
