"""Tasks by name: the toy world's synthetic tasks and real benchmarks read from local files.

    >>> from sclab.tasks import get_task
    >>> get_task("arith").name
    'arith'
"""
from __future__ import annotations

from importlib import import_module

from .base import Grade, Problem, Task

# name -> "module:Class"; modules import lazily so a toy run never imports benchmark code
TASKS: dict[str, str] = {
    "arith": "sclab.toy.world:ArithTask",
    "gsm8k": "sclab.tasks.gsm8k:GSM8K",
    "math500": "sclab.tasks.math500:MATH500",
    "commonsenseqa": "sclab.tasks.commonsenseqa:CommonsenseQA",
    "humaneval": "sclab.tasks.humaneval:HumanEval",
    "mbpp": "sclab.tasks.mbpp:MBPP",
}


def get_task(name: str, **kwargs) -> Task:
    """Instantiate a task by name; kwargs go to its constructor (e.g. `path=` for a local file)."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    module, cls = TASKS[name].split(":")
    return getattr(import_module(module), cls)(**kwargs)


__all__ = ["TASKS", "get_task", "Task", "Problem", "Grade"]
