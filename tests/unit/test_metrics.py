"""sclab.metrics against hand-computed values, identities from the papers and exact formulas."""
import doctest
import importlib
import math
import time

import numpy as np
import pandas as pd
import pytest

from sclab import metrics as M

pytestmark = pytest.mark.unit


def records(rows, turns=(1, 2)):
    """rows: (problem_id, sample, correct at turns..., [extracted at turns...]) -> long records."""
    out = []
    for pid, sample, *vals in rows:
        corr, ext = vals[: len(turns)], vals[len(turns):] or [f"a{pid}{sample}{t}" for t in turns]
        for t, c, e in zip(turns, corr, ext):
            out.append({"problem_id": pid, "sample": sample, "turn": t, "correct": bool(c), "extracted": e})
    return pd.DataFrame(out)


def random_records(n_problems, n_samples, seed, keep=0.85, gain=0.3):
    """Problems of random difficulty; turn 2 keeps a right answer w.p. `keep`, fixes a wrong one w.p. `gain`."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n_problems), n_samples)
    sample = np.tile(np.arange(n_samples), n_problems)
    c1 = rng.random(len(pid)) < rng.random(n_problems)[pid]
    c2 = np.where(c1, rng.random(len(pid)) < keep, rng.random(len(pid)) < gain)
    both = lambda a: np.concatenate([a, a])
    return pd.DataFrame({"problem_id": both(pid), "sample": both(sample), "turn": np.repeat([1, 2], len(pid)),
                         "correct": np.concatenate([c1, c2]), "tokens": rng.integers(1, 100, 2 * len(pid))})


# A: (right, right), (right, wrong); B: (wrong, right), (wrong, wrong); C: (right, right), (wrong, right)
HAND = records([("A", 0, 1, 1), ("A", 1, 1, 0), ("B", 0, 0, 1), ("B", 1, 0, 0), ("C", 0, 1, 1), ("C", 1, 0, 1)])


def test_correction_metrics_hand_table():
    # 6 pairs: right at t1 = 3 -> 1/2; right at t2 = 4 -> 2/3; i2c = B0, C1 -> 2/6; c2i = A1 -> 1/6; delta = 1/6.
    # CCT: A P_a=1 P_b=1/2; B P_a=0 P_c=1/2; C P_a=1/2 P_b=1 P_c=1.
    # Acc1 = 1.5/3 = 1/2; Acc2 = (1/2 + 1/2 + (1/2 + 1/2))/3 = 2/3; CL = (1/2 + 1/2)/1.5 = 2/3;
    # CS = (1/2 + 1/2)/(3 - 1.5) = 2/3; RSS = (2/3 - 1/4)/(2 * 1/2 * 1/2) = 5/6.
    expected = {"acc_t1": 1 / 2, "acc_t2": 2 / 3, "delta": 1 / 6, "delta_i2c": 1 / 3, "delta_c2i": 1 / 6,
                "cl": 2 / 3, "cs": 2 / 3, "rss": 5 / 6, "acc1_cct": 1 / 2, "acc2_cct": 2 / 3}
    got = M.correction_metrics(HAND)
    assert set(got) == set(M.CORRECTION_KEYS)
    assert got == pytest.approx(expected, abs=1e-12)


def test_correction_metrics_unequal_samples():
    # P has 1 sample (right, right); Q has 3 samples, all (wrong, wrong) except one (wrong, right).
    # SCoRe over 4 pairs: acc_t1 = 1/4, acc_t2 = 2/4. CCT per problem: P_a = (1, 0) -> Acc1 = 1/2;
    # Acc2 = (1*1 + 1*(1/3))/2 = 2/3; CL = 1/1 = 1; CS = (1/3)/(2 - 1) = 1/3; RSS = (2/3 - 1/4)/(1/2) = 5/6.
    df = records([("P", 0, 1, 1), ("Q", 0, 0, 0), ("Q", 1, 0, 1), ("Q", 2, 0, 0)])
    got = M.correction_metrics(df)
    assert got == pytest.approx({"acc_t1": 1 / 4, "acc_t2": 1 / 2, "delta": 1 / 4, "delta_i2c": 1 / 4, "delta_c2i": 0.0,
                                 "cl": 1.0, "cs": 1 / 3, "rss": 5 / 6, "acc1_cct": 1 / 2, "acc2_cct": 2 / 3})


@pytest.mark.parametrize("rows, nan_keys", [
    ([(0, 0, 0, 0), (1, 0, 0, 1)], {"cl", "rss"}),  # nothing right at t1: ΣP_a = 0 and Acc1 = 0
    ([(0, 0, 1, 1), (1, 0, 1, 0)], {"cs", "rss"}),  # everything right at t1: N - ΣP_a = 0 and Acc1 = 1
])
def test_zero_denominators_are_nan(rows, nan_keys):
    got = M.correction_metrics(records(rows))
    assert {k for k, v in got.items() if math.isnan(v)} == nan_keys


@pytest.mark.parametrize("seed", range(5))
def test_identities_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    m = M.correction_metrics(random_records(int(rng.integers(5, 60)), int(rng.integers(1, 6)), seed))
    assert m["delta"] == m["delta_i2c"] - m["delta_c2i"]  # exactly, by construction
    assert m["acc_t2"] - m["acc_t1"] == pytest.approx(m["delta"], abs=1e-12)
    # equal samples per problem: CCT's Acc1/Acc2 are SCoRe's, and Acc2 = Acc1·CL + (1 - Acc1)·CS
    assert m["acc1_cct"] == pytest.approx(m["acc_t1"]) and m["acc2_cct"] == pytest.approx(m["acc_t2"])
    assert m["acc2_cct"] == pytest.approx(m["acc1_cct"] * m["cl"] + (1 - m["acc1_cct"]) * m["cs"])


@pytest.mark.parametrize("seed", range(5))
def test_one_sample_per_problem_cl_cs_from_transitions(seed):
    # one sample: CL = 1 - Δc→i/Acc@t1 and CS = Δi→c/(1 - Acc@t1) (REFERENCES.md, Confidence v.s. Critique)
    m = M.correction_metrics(random_records(80, 1, seed))
    assert m["cl"] == pytest.approx(1 - m["delta_c2i"] / m["acc_t1"])
    assert m["cs"] == pytest.approx(m["delta_i2c"] / (1 - m["acc_t1"]))


@pytest.mark.parametrize("seed", range(3))
def test_rss_is_half_when_acc_unchanged(seed):
    # turn 2 shuffles each problem's turn-1 outcomes across its samples: every P_a is kept, so Acc2 == Acc1
    df = random_records(40, 4, seed)
    rng = np.random.default_rng(seed)
    t1 = df[df.turn == 1]
    shuffled = t1.groupby("problem_id")["correct"].transform(lambda c: rng.permutation(c.to_numpy()))
    df.loc[df.turn == 2, "correct"] = shuffled.to_numpy()
    m = M.correction_metrics(df)
    assert m["acc2_cct"] == pytest.approx(m["acc1_cct"]) and m["rss"] == pytest.approx(0.5)


# SCoRe Tables (Acc@t1, Acc@t2, Δ, Δi→c, Δc→i in %): MATH on 500 problems, HumanEval on 164
SCORE_ROWS = [
    ("MATH base", 500, 52.6, 41.4, -11.2, 4.6, 15.8),
    ("MATH Self-Refine", 500, 52.8, 51.8, -1.0, 3.2, 4.2),
    ("MATH STaR", 500, 53.6, 54.0, 0.4, 2.6, 2.2),
    ("MATH Pair-SFT", 500, 52.4, 54.2, 1.8, 5.4, 3.6),
    ("MATH SCoRe", 500, 60.0, 64.4, 4.4, 5.8, 1.4),
    ("HumanEval base", 164, 53.7, 56.7, 3.0, 7.9, 4.9),
    ("HumanEval SCoRe", 164, 52.4, 64.6, 12.2, 15.2, 3.0),
]


@pytest.mark.parametrize("name, n, acc1, acc2, delta, i2c, c2i", SCORE_ROWS)
def test_score_paper_rows(name, n, acc1, acc2, delta, i2c, c2i):
    # the paper's rows satisfy Δ = Δi→c − Δc→i up to rounding; a table with those counts reproduces all five numbers
    assert delta == pytest.approx(i2c - c2i, abs=0.11) and delta == pytest.approx(acc2 - acc1, abs=0.11)
    k1, ki2c, kc2i = (round(x * n / 100) for x in (acc1, i2c, c2i))
    c1 = np.arange(n) < k1
    c2 = c1.copy()
    c2[:kc2i] = False                    # the first kc2i right answers break
    c2[k1:k1 + ki2c] = True              # the first ki2c wrong answers get fixed
    df = records([(i, 0, a, b) for i, (a, b) in enumerate(zip(c1, c2))])
    m = M.correction_metrics(df)
    got = [round(100 * m[k], 1) for k in ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i")]
    assert got == [acc1, acc2, delta, i2c, c2i]
    assert m["cl"] == pytest.approx(1 - m["delta_c2i"] / m["acc_t1"])


def test_oracle_stop_and_turn_accuracy():
    # 3 turns: sample (F, T, F) becomes (F, T, T); (T, F, F) becomes (T, T, T); (F, F, F) stays
    df = records([(0, 0, 0, 1, 0), (1, 0, 1, 0, 0), (2, 0, 0, 0, 0)], turns=(1, 2, 3)).sample(frac=1, random_state=0)
    out = M.oracle_stop(df)
    assert out.index.equals(df.index)  # same records, same order
    by = out.set_index(["problem_id", "turn"])["correct"]
    assert [by[(0, t)] for t in (1, 2, 3)] == [False, True, True]
    assert [by[(1, t)] for t in (1, 2, 3)] == [True, True, True]
    assert M.turn_accuracy(df).tolist() == pytest.approx([1 / 3, 1 / 3, 0.0])
    assert M.turn_accuracy(out).tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])  # never decreases


@pytest.mark.parametrize("n, c, k", [(n, c, k) for n in (1, 2, 5, 10, 20, 50) for c in range(0, n + 1, max(1, n // 5))
                                     for k in (1, 2, 5, 10, n) if k <= n])
def test_pass_at_k_matches_comb(n, c, k):
    # exact form 1 - C(n-c, k)/C(n, k); comb() is 0 when k > n - c
    assert M.pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_df():
    # problem 0: 4 samples, 1 right -> pass@2 = 1 - C(3,2)/C(4,2) = 1/2; problem 1: 4 samples, 0 right -> 0
    df = records([(p, s, int(p == 0 and s == 2), 0) for p in (0, 1) for s in range(4)])
    assert M.pass_at_k_df(df, 2) == pytest.approx(0.25)
    assert M.pass_at_k_df(df, 1) == pytest.approx(0.125)  # pass@1 = mean accuracy


@pytest.mark.parametrize("answers, right, k, expected", [
    (["4", "5", "4"], [1, 0, 1], 3, 1.0),           # "4" has 2 votes
    (["5", "4", "4"], [0, 1, 1], 3, 1.0),           # "4" wins although "5" came first
    (["5", "4"], [0, 1], 2, 0.0),                   # tie: the first occurrence "5" wins
    ([None, None, "4"], [0, 0, 1], 3, 1.0),         # failures never win, even with 2 of 3
    ([None, None], [0, 0], 2, 0.0),                 # only failures: no answer, wrong
])
def test_maj_at_k_first(answers, right, k, expected):
    df = pd.DataFrame({"problem_id": 0, "sample": range(len(answers)), "turn": 1,
                       "correct": [bool(r) for r in right], "extracted": answers})
    assert M.maj_at_k(df.iloc[::-1], k) == expected  # rows in reverse: order comes from `sample`, not row order


def test_maj_at_k_first_k_and_right_if_any_row_right():
    # first 2 of ["4", "5", "5", "5"]: tie -> "4", which is right
    df = pd.DataFrame({"problem_id": 0, "sample": range(4), "turn": 1, "correct": [True, False, False, False],
                       "extracted": ["4", "5", "5", "5"]})
    assert M.maj_at_k(df, 2) == 1.0 and M.maj_at_k(df, 4) == 0.0
    # the winner "7" is right because one of its rows is graded right
    df2 = pd.DataFrame({"problem_id": 0, "sample": range(3), "turn": 1, "correct": [False, True, False], "extracted": ["7", "7", "8"]})
    assert M.maj_at_k(df2, 3) == 1.0


@pytest.mark.parametrize("answers, right, k, expected", [
    (["4", "4", "5"], [1, 1, 0], 1, 2 / 3),  # k=1: a random sample is right 2/3 of the time
    (["4", "4", "5"], [1, 1, 0], 2, 1.0),    # {0,1}, {1,2} -> "4"; {0,2} tie -> "4" first
    (["5", "4", "4"], [0, 1, 1], 2, 1 / 3),  # {0,1} tie -> "5"; {0,2} tie -> "5"; {1,2} -> "4": 1 of 3
])
def test_maj_at_k_bootstrap(answers, right, k, expected):
    df = pd.DataFrame({"problem_id": 0, "sample": range(3), "turn": 1, "correct": [bool(r) for r in right], "extracted": answers})
    assert M.maj_at_k(df, k, estimator="bootstrap", n_boot=4000) == pytest.approx(expected, abs=0.03)  # 4000 draws: s.e. < 0.008


def test_answer_change_extraction_tokens_truncation():
    # pairs: (1 -> 1) same; (2 -> 3) changed; (None -> 3) changed; (4 -> None) changed -> 3/4
    df = records([(0, 0, 1, 1, "1", "1"), (0, 1, 0, 1, "2", "3"), (1, 0, 0, 1, None, "3"), (1, 1, 1, 0, "4", None)])
    df["tokens"] = [10, 20, 30, 40, 50, 60, 70, 80]
    df["time"] = 0.5
    df["truncated"] = [False, False, False, True, False, False, False, True]
    assert M.answer_changed_rate(df) == 0.75
    assert M.extraction_failure_rate(df) == 2 / 8 and M.extraction_failure_rate(df, turn=1) == 1 / 4
    assert M.truncation_rate(df) == 2 / 8 and M.truncation_rate(df, turn=2) == 2 / 4
    cost = M.token_cost(df)  # 360 tokens, 2 problems, 4 samples, 8 generations
    assert (cost["tokens_per_problem"], cost["tokens_per_sample"], cost["tokens_per_turn"]) == (180, 90, 45)
    assert cost["tokens_by_turn"] == {1: 40.0, 2: 50.0} and cost["time_per_problem"] == 2.0


@pytest.mark.parametrize("conf, correct, n_bins, expected_ece, expected_rms", [
    # bins [0.2,0.3): acc 1/2, conf 0.225; [0.9,1]: acc 1, conf 0.925 -> 0.5*0.275 + 0.5*0.075
    ([0.2, 0.25, 0.9, 0.95], [0, 1, 1, 1], 10, 0.175, math.sqrt(0.5 * 0.275 ** 2 + 0.5 * 0.075 ** 2)),
    ([0.5, 0.5], [0, 1], 10, 0.0, 0.0),                      # perfectly calibrated
    ([1.0, 0.0], [1, 0], 10, 0.0, 0.0),                      # 1.0 falls in the last (closed) bin, 0.0 in the first
    ([0.3, 0.39], [1, 0], 10, abs(0.5 - 0.345), abs(0.5 - 0.345)),  # 0.3 is the left edge of [0.3, 0.4)
    ([0.1, 0.7], [0, 0], 1, 0.4, 0.4),                       # one bin: |0 - 0.4|
])
def test_calibration_errors(conf, correct, n_bins, expected_ece, expected_rms):
    assert M.ece(conf, correct, n_bins) == pytest.approx(expected_ece)
    assert M.rms_calibration_error(conf, correct, n_bins) == pytest.approx(expected_rms)


def test_brier():
    # (0.2-0)² + (0.25-1)² + (0.9-1)² + (0.95-1)² = 0.04 + 0.5625 + 0.01 + 0.0025 = 0.615; / 4
    assert M.brier([0.2, 0.25, 0.9, 0.95], [0, 1, 1, 1]) == pytest.approx(0.15375)


@pytest.mark.parametrize("scores, labels, expected", [
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),  # 3 of 4 (pos, neg) pairs ordered right
    ([0.1, 0.2, 0.3], [0, 1, 1], 1.0),            # perfect
    ([0.3, 0.2, 0.1], [0, 1, 1], 0.0),            # reversed
    ([0.5, 0.5], [1, 0], 0.5),                    # tie counts half
    ([0.5, 0.5, 0.9], [1, 0, 0], 0.25),           # pos 0.5 vs neg 0.5 (1/2) and vs neg 0.9 (0): 0.5/2
])
def test_auroc(scores, labels, expected):
    assert M.auroc(scores, labels) == pytest.approx(expected)


def test_auroc_one_class_is_nan():
    assert math.isnan(M.auroc([0.1, 0.9], [1, 1]))


def test_bootstrap_ci_contains_point_and_narrows():
    def width(n):
        df = random_records(n, 4, seed=n)
        fn = lambda d: M.correction_metrics(d)["delta"]
        lo, hi = M.bootstrap_ci(df, fn, n_boot=100)  # 100 resamples keep this < 2 s
        assert lo <= fn(df) <= hi
        return hi - lo
    assert width(400) < width(25)


def test_bootstrap_ci_counts_duplicate_draws_twice():
    # every resample sees P distinct ids (duplicates relabelled) and P x rows-per-problem rows
    df = random_records(5, 3, seed=0)
    seen = []
    M.bootstrap_ci(df, lambda d: seen.append((d.problem_id.nunique(), len(d), d.source_problem_id.nunique())) or 0.0, n_boot=50)
    assert {s[:2] for s in seen} == {(5, 30)} and min(s[2] for s in seen) < 5  # some problem was drawn twice


def test_metrics_with_ci_agrees_with_generic_bootstrap():
    # same seed -> same resamples: the vectorised CI equals the DataFrame-per-resample one
    df = random_records(30, 3, seed=1)
    fast = M.metrics_with_ci(df, n_boot=100)  # 100 resamples: the DataFrame path costs ~5 ms each
    for key in ("delta", "cl", "rss"):
        slow = M.bootstrap_ci(df, lambda d: M.correction_metrics(d)[key], n_boot=100)
        assert (fast[f"{key}_lo"], fast[f"{key}_hi"]) == pytest.approx(slow, abs=1e-12)
    tok = M.bootstrap_ci(df, lambda d: M.token_cost(d)["tokens_per_problem"], n_boot=100)
    assert (fast["tokens_per_problem_lo"], fast["tokens_per_problem_hi"]) == pytest.approx(tok)


def test_metrics_with_ci_keys_points_and_speed():
    df = random_records(1000, 4, seed=2)  # the size the brief asks to be fast: 1000 problems x 4 samples x 2 turns
    df["extracted"] = np.where(df["correct"], "right", None)
    start = time.perf_counter()
    res = M.metrics_with_ci(df, n_boot=1000)
    assert time.perf_counter() - start < 5.0
    point = M.correction_metrics(df)
    for key in M.CORRECTION_KEYS:
        assert res[key] == pytest.approx(point[key]) and res[f"{key}_lo"] <= res[key] <= res[f"{key}_hi"]
    assert res["answer_changed_rate"] == pytest.approx(M.answer_changed_rate(df))
    assert res["extraction_failure_rate"] == pytest.approx(M.extraction_failure_rate(df))
    assert res["tokens_per_problem"] == pytest.approx(M.token_cost(df)["tokens_per_problem"])
    assert res["n_problems"] == 1000


@pytest.mark.parametrize("cl, cs, acc0", [(0.9, 0.2, 0.5), (0.6, 0.1, 0.8), (0.95, 0.5, 0.1), (0.5, 0.5, 0.3)])
def test_convergence_closed_form_equals_iteration(cl, cs, acc0):
    fit = M.fit_convergence(cl, cs, acc0)
    assert fit["alpha"] == pytest.approx(cl - cs) and fit["upp"] == pytest.approx(cs / (1 - cl + cs))
    acc, iterated = acc0, [acc0]
    for _ in range(10):
        acc = acc * cl + (1 - acc) * cs
        iterated.append(acc)
    assert M.predict_rounds(acc0, cl, cs, 10) == pytest.approx(iterated)


def test_convergence_degenerate():
    # CL = 1, CS = 0: nothing ever changes, no finite fixed point formula
    assert math.isnan(M.fit_convergence(1.0, 0.0, 0.4)["upp"])
    assert M.predict_rounds(0.4, 1.0, 0.0, 3) == [0.4] * 4


@pytest.mark.parametrize("call, message", [
    (lambda: M.correction_metrics(HAND.drop(columns="correct")), "correct"),                    # missing column
    (lambda: M.correction_metrics(pd.concat([HAND, HAND.iloc[:1]])), "duplicated"),             # duplicated record
    (lambda: M.correction_metrics(HAND[~((HAND.problem_id == "B") & (HAND.turn == 2) & (HAND["sample"] == 1))]), "'B'"),  # t2 lost
    (lambda: M.correction_metrics(HAND, t1=1, t2=3), "turn 3"),                                 # no such turn
    (lambda: M.pass_at_k(3, 4, 1), "c must"),
    (lambda: M.pass_at_k(3, -1, 1), "c must"),
    (lambda: M.pass_at_k(3, 1, 0), "k must"),
    (lambda: M.pass_at_k(3, 1, 4), "k must"),
    (lambda: M.pass_at_k_df(HAND, 3), "problem 'A'"),                                           # 2 samples, k = 3
    (lambda: M.maj_at_k(HAND, 3), "problem 'A'"),
    (lambda: M.maj_at_k(HAND, 1, estimator="combinatorial"), "valid"),
    (lambda: M.ece([0.5, 1.2], [0, 1]), r"\[0, 1\]"),
    (lambda: M.ece([0.5], [0, 1]), "equal length"),
    (lambda: M.fit_convergence(1.5, 0.1, 0.5), "cl"),
])
def test_input_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("module", ["", ".correction", ".sampling", ".calibration", ".bootstrap", ".convergence",
                                    ".second_attempt"])
def test_docstring_examples(module):
    # the modules' examples are part of their contract
    result = doctest.testmod(importlib.import_module(f"sclab.metrics{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_package_reexports_every_public_name():
    # `from sclab.metrics import X` keeps working for everything the modules export
    for name in M.__all__:
        assert hasattr(M, name), name
    assert {"correction_metrics", "metrics_with_ci", "maj_at_k", "keep_fix_rates", "draws", "interval"} <= set(M.__all__)


@pytest.mark.parametrize("a, b, expected", [
    ("1 +2 = 3", "1 +2 = 3", 0.0),          # identical
    ("1 +2 = 3", "1 +2 = 4", 0.25),         # one substitution in four tokens
    ("same > 5", "1 +2 = 3 ; > 5", 5 / 7),  # ">" and "5" shared: 1 substitution + 4 insertions over 7 tokens
    ("", "", 0.0),                          # nothing to compare
    ("a b", "", 1.0),                       # everything deleted
])
def test_token_edit_distance(a, b, expected):
    from sclab.metrics import token_edit_distance

    assert token_edit_distance(a, b) == pytest.approx(expected)


def test_edit_distance_rate_pairs_turns():
    from sclab.metrics import edit_distance_rate

    df = pd.DataFrame({"problem_id": ["p", "p", "q", "q"], "sample": [0, 0, 0, 0], "turn": [1, 2, 1, 2],
                       "response": ["a b", "a c", "x", "x"], "correct": [1, 1, 0, 0]})
    assert edit_distance_rate(df) == pytest.approx((0.5 + 0.0) / 2)  # one of two tokens changed; unchanged
