"""sclab.records: the schema, validation, turn pairing, "answer changed", rows and JSONL in/out."""
import doctest
import json
import math

import numpy as np
import pandas as pd
import pytest

from sclab import records as R
from sclab.generate import Completion
from sclab.tasks import Grade, Problem
from sclab.toy.world import ArithTask

pytestmark = pytest.mark.unit


def test_doctest():
    result = doctest.testmod(R)
    assert result.attempted > 0 and result.failed == 0


def test_columns_are_the_base_schema_in_order():
    assert R.COLUMNS[:3] == R.KEY == ["problem_id", "sample", "turn"]
    assert R.COLUMNS == ["problem_id", "sample", "turn", "strategy", "stop", "response", "extracted", "how",
                         "correct", "tokens", "time", "truncated", "logprob", "carried", "feedback"]
    from sclab.rollout import COLUMNS  # rollout builds its table with the same schema
    assert COLUMNS is R.COLUMNS


# ----------------------------------------------------------------------------- validation
BASE = pd.DataFrame({"problem_id": ["a", "a", "b", "b"], "sample": 0, "turn": [1, 2, 1, 2],
                     "correct": [True, False, False, True], "extracted": ["1", "2", None, "4"]})


@pytest.mark.parametrize("df, need, what, key, match", [
    (BASE.drop(columns="correct"), ["correct"], "records", R.KEY,
     r"records lack column\(s\) \['correct'\]; columns present: \['problem_id', 'sample', 'turn', 'extracted'\]"),
    (BASE.drop(columns=["turn", "extracted"]), ["extracted"], "records", R.KEY,
     r"lack column\(s\) \['turn', 'extracted'\]"),                       # every missing column, key first
    (BASE.assign(correct=[True, None, False, True]), ["correct"], "records", R.KEY,
     "`correct` has missing values \\(problem 'a'\\)"),
    (pd.concat([BASE, BASE.iloc[[2]]]), [], "records", R.KEY,
     r"records: more than one row for \(problem_id, sample, turn\) = \('b', 0, 1\) \(duplicated"),
    (BASE, [], "parallel_df", R.EPISODE,                                 # a probe table: one row per episode
     r"parallel_df: more than one row for \(problem_id, sample\) = \('a', 0\)"),
    (BASE.drop(columns="correct"), ["correct"], "gold probe", R.EPISODE, r"gold probe lacks column\(s\)"),
])
def test_validate_names_what_is_wrong(df, need, what, key, match):
    with pytest.raises(ValueError, match=match):
        R.validate(df, need, what, key)


def test_validate_passes_a_good_table_and_extra_columns_through():
    df = BASE.assign(error_kind=["slip", None, None, "unsure"], critic="ok")   # labels, a critic's verdict
    assert R.validate(df, ["correct", "extracted", "error_kind"]) is df
    first = BASE[BASE.turn == 1].drop(columns="turn")                         # one row per episode
    assert R.validate(first, ["correct"], "probe", key=R.EPISODE) is first
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        R.validate(BASE.to_dict("records"))


# ----------------------------------------------------------------------------- pairing
# three episodes over turns 1-3, rows out of order (q first, p1 turn 2 before turn 1); p0 fails to extract at turn 3
LONG = pd.DataFrame([
    ("q", 1, 1, False, "3"), ("q", 1, 2, True, "5"), ("q", 1, 3, True, "5"),
    ("p", 0, 1, True, "7"), ("p", 0, 2, True, "7"), ("p", 0, 3, False, None),
    ("p", 1, 2, False, "1"), ("p", 1, 1, False, None), ("p", 1, 3, True, "7"),
], columns=["problem_id", "sample", "turn", "correct", "extracted"])


def test_pairs_against_a_hand_table():
    got = R.pairs(LONG, 1, 2, ("correct", "extracted"))
    # sorted by (problem_id, sample): p0, p1, q1; turn 1 then turn 2 of each
    expected = pd.DataFrame({"problem_id": ["p", "p", "q"], "sample": [0, 1, 1],
                             "correct_1": [True, False, False], "extracted_1": ["7", None, "3"],
                             "correct_2": [True, False, True], "extracted_2": ["7", "1", "5"]})
    pd.testing.assert_frame_equal(got, expected)
    # turns 2 -> 3, and the order of the turn-t1 rows with sort=False (q first in the table)
    late = R.pairs(LONG, 2, 3, sort=False)
    assert list(zip(late.problem_id, late["sample"], late.correct_1, late.correct_2)) == [
        ("q", 1, True, True), ("p", 0, True, False), ("p", 1, False, True)]


def test_pairs_errors():
    with pytest.raises(ValueError, match="problem 'p' sample 1 has a record at turn 1 but none at turn 2"):
        R.pairs(LONG[~((LONG.problem_id == "p") & (LONG["sample"] == 1) & (LONG.turn == 2))])
    with pytest.raises(ValueError, match=r"no records at turn 4; turns present: \[1, 2, 3\]"):
        R.pairs(LONG, 1, 4)
    with pytest.raises(ValueError, match="must differ"):
        R.pairs(LONG, 2, 2)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['response'\]"):
        R.pairs(LONG, 1, 2, ("response",))


def test_pairs_with_joins_a_probe_table():
    probe = pd.DataFrame({"problem_id": ["q", "p", "p"], "sample": [1, 1, 0], "correct": [False, True, True],
                          "response": ["x", "y", "z"]})
    got = R.pairs_with(LONG, probe, "probe")
    assert got[["problem_id", "sample", "correct_o", "response_o"]].values.tolist() == [
        ["p", 0, True, "z"], ["p", 1, True, "y"], ["q", 1, False, "x"]]
    with pytest.raises(ValueError, match="probe has no row for problem 'q' sample 1"):
        R.pairs_with(LONG, probe.iloc[1:], "probe")


def test_transition_matrix_pairs_turns_the_same_way():
    from sclab.plots import transition_matrix

    # turn 1 -> 2: p0 right -> right, p1 wrong -> wrong, q1 wrong -> right; one third each
    m = transition_matrix(LONG)
    assert m.values.tolist() == [[1 / 3, 1 / 3], [0.0, 1 / 3]]
    with pytest.raises(ValueError, match="none at turn 2"):   # a lost turn is an error, not a silent "right"
        transition_matrix(LONG[~((LONG.problem_id == "q") & (LONG.turn == 2))])


# ----------------------------------------------------------------------------- answer changed
@pytest.mark.parametrize("e1, e2, changed", [
    ("3", "3", False),            # the same answer
    ("3", "4", True),             # another answer
    ("3", None, True),            # an answer, then none: no answer is not the same answer
    (None, "3", True),            # none, then an answer
    (None, None, False),          # no answer twice: nothing changed
    (float("nan"), None, False),  # NaN and None both mean an extraction failure (pandas turns None into NaN)
    ("3", " 3", True),            # compared exactly as recorded: the grader normalises, not this
])
def test_answer_changed_cases(e1, e2, changed):
    assert R.answer_changed(e1, e2) is changed
    assert R.answer_changed([e1], [e2]).tolist() == [changed]


def test_answer_changed_vectorised_on_series_with_other_indexes():
    a = pd.Series(["1", None, "2", None], index=[10, 11, 12, 13])
    b = pd.Series(["1", "5", None, None], index=[0, 1, 2, 3])     # positions pair up, not labels
    assert R.answer_changed(a, b).tolist() == [False, True, True, False]
    with pytest.raises(ValueError, match="same length"):
        R.answer_changed(["1"], ["1", "2"])


def test_every_changed_rate_uses_the_one_definition():
    # 4 pairs: same, changed, failure -> failure, answer -> failure: 2/4 changed
    from sclab.metrics import answer_changed_rate, keep_fix_rates, metrics_with_ci

    df = pd.DataFrame({"problem_id": [0, 0, 1, 1, 2, 2, 3, 3], "sample": 0, "turn": [1, 2] * 4,
                       "correct": [True, True, False, True, False, False, True, False],
                       "extracted": ["1", "1", "2", "3", None, None, "4", None], "tokens": 1})
    assert answer_changed_rate(df) == 0.5 and metrics_with_ci(df, n_boot=20)["answer_changed_rate"] == 0.5
    r = keep_fix_rates(df)  # right at t1: pairs 0 (kept), 3 (changed); wrong: 1 (changed), 2 (failure twice)
    assert (r["change_right"], r["change_wrong"]) == (0.5, 0.5)


# ----------------------------------------------------------------------------- rows
def test_row_builds_the_schema_and_inherits_labels_of_a_kept_answer():
    task = ArithTask()
    p = task.problems(1, seed=3)[0]
    wrong = p.meta["solution"].rsplit(">", 1)[0] + f"> {(int(p.gold) + 1) % 13}"   # right lines, wrong answer
    comp = lambda text: Completion(text=text, token_ids=[1, 2], logprob=-0.5, tokens=2, time=0.1,
                                   finish_reason="stop")
    first = R.row(p, 0, 1, "retry", "intrinsic", comp(wrong), task.grade(p, wrong), task=task)
    assert list(first)[:len(R.COLUMNS)] == R.COLUMNS and list(first)[len(R.COLUMNS):] == list(task.label_columns)
    assert (first["correct"], first["extracted"], first["carried"], first["tokens"]) == (False, str((int(p.gold) + 1) % 13), False, 2)
    keep = "same > " + first["extracted"]
    second = R.row(p, 0, 2, "retry", "intrinsic", comp(keep), task.grade(p, keep), task=task, prev=first)
    assert second["form"] == "keep"
    assert {k: second[k] for k in task.inherited_labels} == {k: first[k] for k in task.inherited_labels}
    plain = R.row(Problem("x", "q", "1"), 2, 1, "retry", "oracle", comp("1"), Grade(True, "1", "last"))
    assert list(plain) == R.COLUMNS and plain["sample"] == 2 and plain["stop"] == "oracle"


# ----------------------------------------------------------------------------- JSONL
def labelled_table():
    """A records table as run_episodes makes it: label columns, NaN log-probs, bools, missing answers."""
    rows = []
    for pid in ("arith/test/0", "arith/test/1"):
        for t in (1, 2):
            rows.append({"problem_id": pid, "sample": 0, "turn": t, "strategy": "retry", "stop": "intrinsic",
                         "response": f"résumé {pid} {t}", "extracted": None if (pid, t) == ("arith/test/1", 2) else "3",
                         "how": "toy-final", "correct": t == 2, "tokens": 10 * t, "time": 0.25 * t,
                         "truncated": False, "logprob": float("nan") if t == 2 else -1.5, "carried": False,
                         "feedback": "", "form": "solve", "split": None, "first_wrong": 1 if t == 1 else None,
                         "error_kind": "slip" if t == 1 else None, "n_wrong": 2 - t, "lucky": False})
    return pd.DataFrame(rows)


def test_jsonl_round_trip_keeps_values_and_dtypes(tmp_path):
    df = labelled_table()
    path = R.write_jsonl(df, tmp_path / "sub" / "records.jsonl")
    back = R.read_jsonl(path)
    pd.testing.assert_frame_equal(back, df)          # values, NaN, None-as-missing, column order and dtypes
    assert back["correct"].dtype == bool and back["tokens"].dtype == np.int64
    assert math.isnan(back["logprob"].iloc[1]) and back["first_wrong"].dtype == np.float64
    assert (path.stat().st_mode & 0o777) == 0o644 and not list(path.parent.glob(".*tmp"))


def test_jsonl_format_is_one_json_object_a_line(tmp_path):
    df = labelled_table().iloc[:2]
    lines = R.write_jsonl(df, tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert list(first) == list(df.columns) and first["split"] is None and first["correct"] is False
    assert '"logprob": NaN' in lines[1] and "résumé" in lines[0]           # JSON's NaN; text kept as UTF-8
    # numpy scalars and pd.NA are written as plain JSON values
    odd = R.to_jsonl([{"a": np.int64(3), "b": np.float32(0.5), "c": pd.NA, "d": np.array([1, 2])}])
    assert json.loads(odd) == {"a": 3, "b": 0.5, "c": None, "d": [1, 2]}


def test_save_records_writes_the_same_bytes(tmp_path, monkeypatch):
    from sclab.runs.record import save_records

    df = labelled_table()
    monkeypatch.setenv("SCLAB_RUN_DIR", str(tmp_path))
    saved = save_records(df)
    assert saved == tmp_path / "records.jsonl" and saved.read_bytes() == R.to_jsonl(df).encode("utf-8")
    assert save_records(df.to_dict("records")).read_bytes() == R.to_jsonl(df).encode("utf-8")


def test_read_jsonl_errors_and_empty(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem_id": 1}\n{oops\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        R.read_jsonl(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert R.read_jsonl(empty).columns.tolist() == R.COLUMNS
