"""The records table: one row per (problem_id, sample, turn), the table every layer shares.

`sclab.rollout` builds its rows (`row`), `sclab.metrics` and the training-set builders read it
(`validate`, `pairs`, `answer_changed`), and a run writes it to `records.jsonl` (`write_jsonl`),
which `read_jsonl` reads back. The base columns (`COLUMNS`):

    problem_id, sample, turn   the key: each (problem, sample, turn) appears once
    strategy, stop             the second-turn strategy (sclab.strategies) and the stopping rule
    response                   the attempt's text
    extracted, how             the answer the grader found (None: an extraction failure) and its rule
    correct                    the grade (bool)
    tokens, time, truncated    generation cost (tokens, seconds) and whether it hit the token limit
    logprob                    the attempt's summed log-probability
    carried                    True where the attempt was not generated but kept (oracle stop, Self-Refine)
    feedback                   a multi-step strategy's intermediate answers

Extra columns are welcome and travel with the rows: a task's error labels (`Task.label_columns`,
e.g. the toy world's `form`, `first_wrong`, `error_kind`), a critic's verdict, execution output,
scores, or a `run` / `method` column naming the run of a concatenated table.

    >>> import pandas as pd; from sclab.records import pairs
    >>> df = pd.DataFrame({"problem_id": ["a", "a", "b", "b"], "sample": 0, "turn": [1, 2, 1, 2],
    ...                    "correct": [False, True, True, True], "extracted": ["3", "4", "7", "7"]})
    >>> p = pairs(df, 1, 2, ("correct", "extracted")); p[["problem_id", "correct_1", "correct_2"]].values.tolist()
    [['a', False, True], ['b', True, True]]
    >>> answer_changed(p["extracted_1"], p["extracted_2"]).tolist()
    [True, False]
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd

from sclab.paths import atomic_write

if TYPE_CHECKING:  # annotations only: records stay importable without the generation stack
    from sclab.generate import Completion
    from sclab.tasks.base import Grade, Problem, Task

COLUMNS = ["problem_id", "sample", "turn", "strategy", "stop", "response", "extracted", "how", "correct",
           "tokens", "time", "truncated", "logprob", "carried", "feedback"]
KEY = ["problem_id", "sample", "turn"]
EPISODE = ["problem_id", "sample"]  # one episode: a sample of a problem, over its turns


# ----------------------------------------------------------------------------- validation
def _native(value):
    """A numpy scalar as the Python one, so that errors show 3, not np.int64(3)."""
    return value.item() if isinstance(value, np.generic) else value


def validate(df: pd.DataFrame, need: Sequence[str] = (), what: str = "records",
             key: Sequence[str] = KEY) -> pd.DataFrame:
    """Check that `df` is a table of `what`: the `key` and `need` columns present, each key once,
    and `correct` (where needed) without missing values. Returns `df`; raises ValueError
    naming what is missing. `key=EPISODE` checks a one-row-per-episode table (a probe's).

    >>> validate(pd.DataFrame({"problem_id": [0], "sample": 0, "turn": 1}), need=["correct"])
    Traceback (most recent call last):
    ...
    ValueError: records lack column(s) ['correct']; columns present: ['problem_id', 'sample', 'turn'] (a records table is what sclab.rollout.run_episodes returns)
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame (the table sclab.rollout.run_episodes returns), "
                        f"got {type(df).__name__}")
    missing = [c for c in dict.fromkeys([*key, *need]) if c not in df.columns]
    if missing:
        verb = "lack" if what.endswith("s") else "lacks"
        hint = " (a records table is what sclab.rollout.run_episodes returns)" if list(key) == KEY else ""
        raise ValueError(f"{what} {verb} column(s) {missing}; columns present: {list(df.columns)}{hint}")
    if "correct" in need and df["correct"].isna().any():
        pid = df.loc[df["correct"].isna(), "problem_id"].iloc[0] if "problem_id" in df.columns else "?"
        raise ValueError(f"{what}: `correct` has missing values (problem {pid!r})")
    if key:
        dup = df.duplicated(list(key))
        if dup.any():
            first = tuple(_native(v) for v in df.loc[dup, list(key)].iloc[0])
            raise ValueError(f"{what}: more than one row for ({', '.join(key)}) = {first} (duplicated; each must "
                             f"appear once)")
    return df


# ----------------------------------------------------------------------------- pairing turns
def pairs(df: pd.DataFrame, t1: int = 1, t2: int = 2, cols: Sequence[str] = ("correct",),
          sort: bool = True) -> pd.DataFrame:
    """One row per (problem_id, sample) with `<col>_1` and `<col>_2` for turns t1 and t2,
    sorted by (problem_id, sample), or with `sort=False` in the order of the turn-t1 rows.
    Every episode must have both turns: a record at one turn without the other is an error
    that names the episode, never a silently dropped pair."""
    validate(df, ["correct", *cols])
    if t1 == t2:
        raise ValueError(f"t1 and t2 must differ (both {t1})")
    sides = []
    for t, tag in ((t1, "1"), (t2, "2")):
        side = df.loc[df["turn"] == t, [*EPISODE, *cols]]
        if side.empty:
            raise ValueError(f"no records at turn {t}; turns present: {sorted(df['turn'].unique().tolist())}")
        sides.append(side.set_index(EPISODE).add_suffix(f"_{tag}"))
    for (a, ta), (b, tb) in (((sides[0], t1), (sides[1], t2)), ((sides[1], t2), (sides[0], t1))):
        lost = a.index.difference(b.index)
        if len(lost):
            pid, sample = map(_native, lost[0])
            raise ValueError(f"problem {pid!r} sample {sample!r} has a record at turn {ta} but none at turn {tb}")
    return sides[0].join(sides[1], how="inner", sort=sort).reset_index()


def pairs_with(df: pd.DataFrame, other: pd.DataFrame, what: str = "other", t1: int = 1, t2: int = 2,
               cols: Sequence[str] = ("correct", "extracted", "response")) -> pd.DataFrame:
    """`pairs(df, t1, t2)` (with `extracted` where present) joined with a one-row-per-episode
    table `other` (a parallel resample, a probe): its `cols` that it has, as `<col>_o`.
    Every episode of `df` must have its row in `other`; `what` names `other` in errors."""
    validate(other, ["correct"], what, key=EPISODE)
    p = pairs(df, t1, t2, ("correct", "extracted") if "extracted" in df.columns else ("correct",))
    keep = [c for c in cols if c in other.columns]
    o = other[[*EPISODE, *keep]].rename(columns={c: f"{c}_o" for c in keep})
    both = p.merge(o, on=EPISODE, how="left", indicator=True)
    lost = both[both["_merge"] != "both"]
    if len(lost):
        pid, sample = _native(lost["problem_id"].iloc[0]), _native(lost["sample"].iloc[0])
        raise ValueError(f"{what} has no row for problem {pid!r} sample {sample!r} "
                         f"({len(lost)} episode pair(s) missing)")
    return both.drop(columns="_merge")


def answer_changed(extracted1, extracted2):
    """Whether the extracted answer changed between two attempts, elementwise (bool array;
    a bool for two scalars). The one definition every metric and trainer uses:

    - two answers: changed when they differ, compared exactly as recorded (the strings the
      grader extracted; it normalises against gold, not here);
    - an answer on one side and an extraction failure (None/NaN) on the other: changed
      (no answer is not the same answer);
    - an extraction failure on both sides: NOT changed (the model gave no answer twice;
      so "the answer changed" means the same as SCoRe's "changes its answer at turn 2").

    >>> answer_changed(["3", "3", None, "5", None], ["3", "4", "4", None, None]).tolist()
    [False, True, True, True, False]
    """
    a = np.asarray(extracted1, dtype=object)
    b = np.asarray(extracted2, dtype=object)
    if a.shape != b.shape:
        raise ValueError(f"extracted1 and extracted2 must have the same length (got {a.shape} and {b.shape})")
    fail_a, fail_b = pd.isna(a), pd.isna(b)
    same = np.zeros(a.shape, dtype=bool)
    both = ~fail_a & ~fail_b
    same[both] = a[both] == b[both]
    out = (fail_a != fail_b) | (both & ~same)
    return bool(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------- building rows
def row(problem: Problem, sample: int, turn: int, strategy: str, stop: str, comp: Completion, grade: Grade,
        feedback: str = "", task: Task | None = None, prev: dict | None = None) -> dict:
    """One record (the `COLUMNS`, then the task's labels of the text where it has them).

    A kept answer (`form == "keep"`) restates `prev`, the previous attempt's row: it
    inherits that row's `task.inherited_labels` (its error is the kept attempt's)."""
    out = {"problem_id": problem.id, "sample": sample, "turn": turn, "strategy": strategy, "stop": stop,
           "response": comp.text, "extracted": grade.extracted, "how": grade.how, "correct": bool(grade.correct),
           "tokens": comp.tokens, "time": comp.time, "truncated": comp.truncated, "logprob": comp.logprob,
           "carried": False, "feedback": feedback}
    labels = task.label(problem, comp.text) if task is not None else None
    if labels:
        if labels.get("form") == "keep" and prev is not None:
            labels = {**labels, **{k: prev.get(k) for k in task.inherited_labels}}
        out.update(labels)
    return out


# ----------------------------------------------------------------------------- JSONL in and out
def _plain(value: Any) -> Any:
    """A cell as a JSON value: numpy scalars and arrays as Python ones, pd.NA/NaT as None,
    paths as str; float NaN stays NaN (JSON's NaN extension, which json.loads reads back)."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors
        return _plain(value.tolist())
    if hasattr(value, "item"):
        return _plain(value.item())
    raise TypeError(f"cannot write a {type(value).__name__} to JSONL: {value!r} is not JSON-serialisable")


def to_jsonl(table: pd.DataFrame | Iterable[dict]) -> str:
    """A records table (DataFrame or dicts) as JSON lines, one row a line, columns in order."""
    rows = table.to_dict(orient="records") if hasattr(table, "to_dict") else [dict(r) for r in table]
    return "".join(json.dumps(_plain(r), ensure_ascii=False) + "\n" for r in rows)


def write_jsonl(table: pd.DataFrame | Iterable[dict], path) -> Path:
    """Write `table` to `path` as JSON lines, atomically (`sclab.paths.atomic_write`). Returns the
    path. `sclab.runs.save_records` writes a run's `records.jsonl` with it."""
    return atomic_write(Path(path), to_jsonl(table).encode("utf-8"))


def read_jsonl(path) -> pd.DataFrame:
    """A records table from a JSONL file (`write_jsonl`, a run's `records.jsonl`).

    Columns keep their order; dtypes are what pandas infers from the JSON values, which for a
    table `write_jsonl` wrote gives back its own: bool, int64, float64 (NaN kept: JSON's NaN),
    and strings with missing values (None or NaN, as written). An empty file gives an empty
    table with the base `COLUMNS`."""
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: line {i} is not JSON ({e.msg})") from None
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=COLUMNS)


__all__ = ["COLUMNS", "KEY", "EPISODE", "validate", "pairs", "pairs_with", "answer_changed", "row", "to_jsonl",
           "write_jsonl", "read_jsonl"]
