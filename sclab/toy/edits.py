"""Where does attempt 2 first depart from a wrong attempt 1? Edit locations on the toy world.

Toy solutions are lines `a op c = r`, each determined by the previous one, so the world can say
where an attempt first went wrong (`sclab.toy.world.first_wrong_line`) and where a second
attempt first differs from it. `locate_edits` compares any two texts per (problem, sample),
`edit_locations` the episodes' wrong attempts 1 with their attempts 2 (or with fresh samples, the
baseline), `summarize_edits` gives the fractions; `toy_clean_solution` is the world's own
correct worked solution (the gold probe's attempt 1, `sclab.probes.gold_probe`).

    >>> from sclab.tasks import Problem; from sclab.toy.edits import locate_edits
    >>> q = Problem("q", "7 ; +3 -5 ; 2 ?", "3")
    >>> wrong, right = "7 +3 = 10 ; 10 -5 = 6 ; 6 +3 = 9 ; 9 -5 = 4 ; > 4", toy_clean_solution(q)
    >>> locate_edits([q], {("q", 0): wrong}, {("q", 0): right})[["first_wrong", "edit_line", "kind"]].values.tolist()
    [[1, 1, 'at']]
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from sclab.metrics.correction import ratio
from sclab.records import EPISODE, pairs, pairs_with, validate
from sclab.tasks.base import Problem

Key = tuple  # (problem_id, sample)
EDIT_KINDS = ("before", "at", "after", "no_lines", "unlocated")


def toy_clean_solution(problem: Problem, world_p: int = 13) -> str:
    """The toy world's correct worked solution, `a op c = r ; ... > answer` (sclab.toy.world)."""
    from sclab.toy.world import parse_question, render, solve

    return render(solve(parse_question(problem.question), world_p))


def _first_diff(a: list, b: list) -> int:
    """First index where two line lists differ; the shorter length if one is a prefix of the other
    (len(a) if identical: the attempts differ only after their working)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def locate_edits(problems, first: Mapping[Key, str], second: Mapping[Key, str], p: int = 13) -> pd.DataFrame:
    """For each key in both maps: where `second` first departs from `first` (`edit_line`, by
    solution line, `parse_lines`) against `first`'s first wrong line (`first_wrong_line`), and
    `kind`: "before" / "at" / "after" the first wrong line, "no_lines" (the second text has no
    solution lines: a `same > r` keep, or unparsable), "unlocated" (the first text has no
    wrong line to compare with: unparsable, or every line right given its own inputs, e.g. a
    solution that starts from a wrong number or ends on a wrong final answer).
    `second` can hold episodes' attempts 2 or any other texts, e.g. parallel resamples."""
    from sclab.toy.world import first_wrong_line, parse_lines

    by_id = dict(problems) if isinstance(problems, Mapping) else {q.id: q for q in problems}
    rows = []
    for key in [k for k in first if k in second]:
        if key[0] not in by_id:
            raise ValueError(f"locate_edits: problem {key[0]!r} not among the problems given")
        a, b = first[key], second[key]
        wrong = first_wrong_line(by_id[key[0]], a, p)
        la, lb = parse_lines(a) or [], parse_lines(b) or []
        edit = _first_diff(la, lb) if lb else None
        if edit is None:
            kind = "no_lines"
        elif wrong is None:
            kind = "unlocated"
        else:
            kind = "before" if edit < wrong else "at" if edit == wrong else "after"
        rows.append({"problem_id": key[0], "sample": key[1], "first_wrong": wrong, "edit_line": edit, "kind": kind})
    out = pd.DataFrame(rows, columns=["problem_id", "sample", "first_wrong", "edit_line", "kind"])
    return out.astype({"first_wrong": "Int64", "edit_line": "Int64"})  # <NA>: no wrong line / no lines


def edit_locations(records: pd.DataFrame, task_problems, p: int = 13, t1: int = 1, t2: int = 2,
                   second: pd.DataFrame | None = None) -> pd.DataFrame:
    """`locate_edits` over the toy-world pairs with attempt 1 wrong and attempt 2's text
    different from it; attempt 2 is the episodes' turn t2, or `second`'s `response` (e.g.
    `sclab.probes.parallel_resample` output, for the baseline) on the same pairs.

    Caveat: on the toy world every line is determined by the previous one, so a fresh correct
    redo also departs from a wrong attempt at (or before) its first wrong line: "at" is not by
    itself evidence of a targeted edit. Compare with the same statistic on parallel resamples
    (`second=parallel_df`), and summarise both with `summarize_edits`."""
    paired = pairs(records, t1, t2, ("correct", "response"))
    if second is not None:
        validate(second, ["correct", "response"], "second", key=EPISODE)
        both = pairs_with(records, second, "second", t1, t2)
        paired = paired.drop(columns="response_2").merge(
            both[[*EPISODE, "response_o"]].rename(columns={"response_o": "response_2"}),
            on=EPISODE)
    sel = paired[~paired["correct_1"].astype(bool) & (paired["response_1"] != paired["response_2"])]
    keys = list(zip(sel["problem_id"], sel["sample"]))
    return locate_edits(task_problems, dict(zip(keys, sel["response_1"])), dict(zip(keys, sel["response_2"])), p)


def summarize_edits(table: pd.DataFrame) -> dict:
    """Fractions edit_before/at/after_first_wrong, edit_no_lines, edit_unlocated (summing to 1;
    NaN when empty) and n_edits, from `edit_locations` / `locate_edits`."""
    validate(table, ["kind"], "edit table", key=())
    n = len(table)
    names = {"before": "edit_before_first_wrong", "at": "edit_at_first_wrong", "after": "edit_after_first_wrong",
             "no_lines": "edit_no_lines", "unlocated": "edit_unlocated"}
    return {"n_edits": n, **{names[k]: float(ratio((table["kind"] == k).sum(), n)) for k in EDIT_KINDS}}


__all__ = ["EDIT_KINDS", "toy_clean_solution", "locate_edits", "edit_locations", "summarize_edits"]
