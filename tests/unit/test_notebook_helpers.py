"""What the notebooks call instead of defining it: error bars and tables from CIs (sclab.plots),
the methods comparison and the equal-budget table (sclab.evaluation), the retry turn and the
generator of a setup cell (sclab.runs.setup), the world of a toy model spec (sclab.toy)."""
from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sclab.evaluation import Evaluations, equal_budget
from sclab.plots import ci_err, ci_sign, ci_table, error_bars, format_ci, group_identical, label
from sclab.runs.setup import load_generator, retry_message
from sclab.toy import TOY_MODELS, toy_world

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_doctests():
    for name in ("sclab.plots", "sclab.evaluation", "sclab.toy.registry"):
        result = doctest.testmod(importlib.import_module(name))
        assert result.failed == 0 and result.attempted > 0, name


# (case, metrics, key, kwargs, expected 2 x N distances below / above)
ERR = [
    # one bar per dict of a sequence
    ("dicts", [{"d": 0.1, "d_lo": 0.0, "d_hi": 0.3}, {"d": -0.2, "d_lo": -0.5, "d_hi": -0.1}], "d", {},
     [[0.1, 0.3], [0.2, 0.1]]),
    # one bar per key of one dict (Acc@t1, Acc@t2 of one run)
    ("keys of one dict", {"a": 0.5, "a_lo": 0.4, "a_hi": 0.55, "b": 0.6, "b_lo": 0.5, "b_hi": 0.8}, ["a", "b"], {},
     [[0.1, 0.1], [0.05, 0.2]]),
    # bounds under other names (the world card's oracle fix rates: fix, lo, hi)
    ("named bounds", [{"fix": 0.5, "lo": 0.25, "hi": 0.75}], "fix", {"lo": "lo", "hi": "hi"}, [[0.25], [0.25]]),
    # the rows of a DataFrame (the error-kind table)
    ("dataframe", pd.DataFrame({"p": [0.2, 0.9], "p_lo": [0.1, 0.8], "p_hi": [0.4, 1.0]}), "p", {},
     [[0.1, 0.1], [0.2, 0.1]]),
    # a bound on the wrong side of its value is a bar of length 0, never a negative one (matplotlib refuses it)
    ("bound past value", [{"x": 0.5, "x_lo": 0.55, "x_hi": 0.7}], "x", {}, [[0.0], [0.2]]),
]


@pytest.mark.parametrize("case,metrics,key,kwargs,expected", ERR, ids=[c[0] for c in ERR])
def test_ci_err(case, metrics, key, kwargs, expected):
    got = ci_err(metrics, key, **kwargs)
    assert got.shape == (2, len(expected[0]))
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_error_bars_from_intervals_and_nan():
    # the multi-round cell passes (lo, hi) tuples from bootstrap_ci; a NaN value stays NaN (no bar)
    got = error_bars([0.5, np.nan], [0.4, 0.1], [0.7, 0.2])
    np.testing.assert_allclose(got[:, 0], [0.1, 0.2])
    assert np.isnan(got[:, 1]).all()


def test_ci_table_rows_per_method():
    # the methods table of 02: signed differences, CIs only where asked, a missing key left empty
    res = {"base": {"acc_t1": 0.5812, "delta": 0.007, "delta_lo": -0.026, "delta_hi": 0.04, "acc_t1_lo": 0.55,
                    "acc_t1_hi": 0.61, "seq_minus_parallel": -0.002},
           "SCoRe": {"acc_t1": 0.6, "delta": -0.01, "delta_lo": -0.04, "delta_hi": 0.02, "acc_t1_lo": 0.57,
                     "acc_t1_hi": 0.63}}
    t = ci_table(res, ["acc_t1", "delta", "seq_minus_parallel"], ci=("delta",))
    assert t.loc["base"].tolist() == ["0.581", "+0.007 [-0.026, +0.040]", "-0.002"]
    assert t.loc["SCoRe", "delta"] == "-0.010 [-0.040, +0.020]" and pd.isna(t.loc["SCoRe", "seq_minus_parallel"])
    # without `ci`, every key with bounds shows them
    assert ci_table(res, ["acc_t1"]).loc["base", "acc_t1"] == "0.581 [0.550, 0.610]"


def test_ci_table_of_one_dict_is_unchanged():
    # 00 and 01 display one run's metrics: a row per key, the rounded value and its CI
    m = {"cl": 0.72345, "cl_lo": 0.7, "cl_hi": 0.75, "n_problems": 300}
    t = ci_table(m, ["cl", "n_problems"])
    assert list(t.columns) == ["value", "95% CI"] and list(t.index) == ["cl", "n_problems"]
    assert t.loc["cl", "value"] == 0.723 and t.loc["cl", "95% CI"] == "[0.700, 0.750]"
    assert t.loc["n_problems", "95% CI"] == ""


def test_format_and_sign():
    m = {"delta": -0.0312, "delta_lo": -0.06, "delta_hi": -0.001}
    assert format_ci(m, "delta") == "-0.031 [-0.060, -0.001]"
    assert ci_sign(m) == "below 0"
    assert ci_sign({"d_lo": -0.1, "d_hi": 0.1}, "d", covers="not distinguishable from 0") == "not distinguishable from 0"


def test_group_identical_on_recorded_strategies():
    # 01's recorded run: the toy model reads 4 words, so 8 strategies give 4 distinct (CL, CS) points
    metrics = json.loads((ROOT / "outputs" / "01_intrinsic" / "quick" / "metrics.json").read_text())["metrics"]
    names = [k.split("/", 1)[1] for k in metrics if k.startswith("strategy/")]
    results = {n: metrics[f"strategy/{n}"] for n in names}
    groups = group_identical(results, names, ["cl", "cs"])
    assert sorted(n for g in groups.values() for n in g) == sorted(names)  # every strategy in one group
    distinct = {(round(results[n]["cl"], 6), round(results[n]["cs"], 6)) for n in names}
    assert len(groups) == len(distinct)
    for members in groups.values():  # the members of a group have the same episodes: equal Acc@t2 too
        assert len({round(results[n]["acc_t2"], 9) for n in members}) == 1


def test_label():
    assert label("acc_t2_swap").startswith("Acc@t2 after another") and label("unknown_key") == "unknown_key"


def _records(votes: dict[int, list[tuple[str, bool]]], turn: int) -> pd.DataFrame:
    rows = []
    for pid, answers in votes.items():
        for s, (ext, right) in enumerate(answers):
            if turn == 2:
                rows.append({"problem_id": pid, "sample": s, "turn": 1, "extracted": "x", "correct": False})
            rows.append({"problem_id": pid, "sample": s, "turn": turn, "extracted": ext, "correct": right})
    return pd.DataFrame(rows)


def test_equal_budget_against_hand_counted_votes():
    # 4 problems; sequential: 2 episodes each (votes over attempt 2), parallel: 4 samples each.
    # Budget 2 = the first attempt-2 answer against a vote of the first 2 samples (a tie goes to the
    # first); budget 4 = a vote of both attempt-2 answers against a vote of all 4 samples.
    seq = _records({0: [("1", True), ("1", True)], 1: [("2", False), ("3", True)],
                    2: [("4", True), ("5", False)], 3: [("6", False), ("6", False)]}, turn=2)
    par = _records({0: [("1", True), ("7", False), ("7", False), ("1", True)],
                    1: [("3", True), ("3", True), ("8", False), ("9", False)],
                    2: [("5", False), ("4", True), ("4", True), ("0", False)],
                    3: [("6", False), ("6", False), ("6", False), ("6", False)]}, turn=1)
    b = equal_budget(seq, par, 4, n_boot=400, seed=0)
    # budget 2: sequential right on problems 0, 2 (first answers) -> 2/4; parallel: 0 (tie 1/7 -> 1),
    # 1 (3), 2 (tie 5/4 -> 5, wrong), 3 wrong -> 2/4
    assert b.loc[2, "sequential"] == 0.5 and b.loc[2, "parallel"] == 0.5
    # budget 4: sequential: 0 right, 1 tie 2/3 -> 2 wrong, 2 tie 4/5 -> 4 right, 3 wrong -> 2/4;
    # parallel: 0 tie 1 (2 votes) / 7 (2 votes) -> 1 right, 1 right, 2 right (4 twice), 3 wrong -> 3/4
    assert b.loc[4, "sequential"] == 0.5 and b.loc[4, "parallel"] == 0.75
    assert b.loc[4, "difference"] == pytest.approx(-0.25)
    # bounds: a mean of 0/1 outcomes of 4 problems lies on the grid k/4, and holds the estimate
    for k in (2, 4):
        for col in ("sequential", "parallel"):
            lo, hi = b.loc[k, f"{col}_lo"], b.loc[k, f"{col}_hi"]
            assert 0 <= lo <= b.loc[k, col] <= hi <= 1
    # the paired difference at budget 4 is -1 on problem 1 and 0 on the others, so a resample's
    # difference is -J/4 with J ~ Binomial(4, 1/4) draws of problem 1: P(J >= 3) = 0.051 and
    # P(J = 4) = 0.004 put the 2.5% quantile at -0.75 (400 draws: ~20 of J = 3, ~2 of J = 4), and
    # P(J = 0) = 0.32 the 97.5% quantile at 0
    assert b.loc[4, "difference_lo"] == -0.75 and b.loc[4, "difference_hi"] == 0


def test_equal_budget_refuses_bad_input():
    seq = _records({0: [("1", True)]}, turn=2)
    with pytest.raises(ValueError, match="k_max must be an even number"):
        equal_budget(seq, seq, 3)
    par = _records({1: [("1", True), ("1", True)]}, turn=1)
    with pytest.raises(ValueError, match="same problems"):
        equal_budget(seq, par, 2)


def test_evaluations_table_reads_its_results():
    ev = Evaluations(None, None, [], "score-instruction", None)
    ev.results["base"] = {"acc_t1": 0.5, "delta": 0.0, "delta_lo": -0.1, "delta_hi": 0.1, "delta_c2i": 0.2,
                          "delta_c2i_lo": 0.1, "delta_c2i_hi": 0.3, "keep_right": 0.8, "keep_right_lo": 0.7,
                          "keep_right_hi": 0.9}
    t = ev.table(["base"])
    # CIs on Δ and Δc→i only, as 02 shows them
    assert t.loc["base", "delta_c2i"] == "+0.200 [+0.100, +0.300]" and t.loc["base", "keep_right"] == "0.800"


def test_retry_message_and_toy_world():
    from sclab.tasks import get_task
    from sclab.strategies import STRATEGIES

    task = get_task("arith")
    p = task.problems(2, seed=0)[1]
    msg = retry_message(task, "score-instruction")(p)
    assert msg == STRATEGIES["score-instruction"].messages(task.dialect, task.answer_format, p.question,
                                                           task.final_answer)[0]
    assert p.question in msg  # the toy dialect restates the question after the word
    assert toy_world("toy:arith") is TOY_MODELS["arith"].world and toy_world("./ckpt") is None
    with pytest.raises(ValueError, match="toy:arith"):
        toy_world("toy:nope")


def test_load_generator_refuses_unknown_backend():
    with pytest.raises(ValueError, match="backend: 'tgi' is not one of hf, vllm"):
        load_generator("toy:arith-tiny", "tgi")
