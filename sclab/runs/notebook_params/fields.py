"""How a notebook parameter declares what it allows: a range, a choice check, a requirement.

Every field of a notebook's dataclass carries its own checks as field metadata, which the
generic loader (`sclab.runs.params.load_params`) reads — no check is looked up by name:

- `ranged(default, lo, hi)`: a number in [lo, hi] (`metadata["range"]`, a `Range`); on a list
  field (`list[float]`) every item must lie in it.
- `checked(default, check, requires=None)`: `check(value, root)` returns an error message or
  None (`metadata["check"]`); `requires(value, root)` says what this machine lacks to run the
  value (`metadata["requires"]`, checked by `sclab run`, not by `sclab params`).

A list default is copied for every instance (a dataclass field cannot share one list).

    >>> from sclab.runs.notebook_params import QuickstartParams, field_range
    >>> str(field_range(QuickstartParams, "temperature")), -1 in field_range(QuickstartParams, "n_problems")
    ('[0, ∞)', False)
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

Check = Callable[[Any, Any], "str | None"]  # (value, project root) -> an error message, or None


@dataclass(frozen=True)
class Range:
    """[lo, hi] (None: unbounded); open_lo makes the lower end exclusive (learning rates > 0)."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    why: str = ""  # said in the error message when the bound has a reason beyond "a count"

    def __contains__(self, value) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.open_lo else value < self.lo):
            return False
        return self.hi is None or value <= self.hi

    def __str__(self) -> str:
        lo = "(-∞" if self.lo is None else ("(" if self.open_lo else "[") + f"{self.lo:g}"
        hi = "∞)" if self.hi is None else f"{self.hi:g}]"
        return f"{lo}, {hi}"


def _field(default, metadata: dict):
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def ranged(default, lo: float | None = None, hi: float | None = None, *, open_lo: bool = False,
           why: str = "", check: Check | None = None):
    """A dataclass field whose value (each item, for a list) must lie in Range(lo, hi, open_lo),
    and that `check(value, root)` accepts, when given (an even count, ...)."""
    metadata: dict = {"range": Range(lo, hi, open_lo, why)}
    if check is not None:
        metadata["check"] = check
    return _field(default, metadata)


def checked(default, check: Check, *, requires: Check | None = None):
    """A dataclass field whose value `check(value, root)` accepts (it returns None) and, when
    `requires` is given, that this machine can run (`requires(value, root)` returns None)."""
    metadata = {"check": check} if requires is None else {"check": check, "requires": requires}
    return _field(default, metadata)


def _field_of(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(name)


def field_range(cls: type, name: str) -> Range | None:
    """The Range a dataclass field declares, or None."""
    return _field_of(cls, name).metadata.get("range")


def field_default(f: dataclasses.Field):
    """A field's default, whether given as a value or a factory (list fields)."""
    return f.default_factory() if f.default is dataclasses.MISSING else f.default
