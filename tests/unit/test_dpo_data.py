"""Preference-pair builders on a hand-made records table: counts per kind, chosen right / rejected wrong,
the injected error, determinism, and clear errors."""
import numpy as np
import pytest

from sclab.tasks.base import Task
from sclab.toy.world import ArithTask, apply, first_wrong_line, inject_toy_error, parse_lines
from sclab.train.dpo import PAIR_BUILDERS, dpo, rise_pairs, scl_pairs
from toy_records import BY_ID, EPISODES, PROBS, R, TASK, W1, W2, records, right, text, wrong  # noqa: F401

pytestmark = pytest.mark.unit
RETRY = "again"
# counted by hand from toy_records.EPISODES (the builders read turn 1 only):
# rise: injected 3 (one per right attempt), natural 4 (the wrongs of P0 and P3; P1's has no right partner).
# scl: keep 2 (the rights of P0 and P3; P2 has no wrong sample), fix 4 (as natural).
REC = records()
RIGHTS = {p.id: {text(p, c) for eps in EPISODES[i] for c in eps[:1] if c == R} for i, p in enumerate(PROBS)}
WRONGS = {p.id: {text(p, c) for eps in EPISODES[i] for c in eps[:1] if c != R} for i, p in enumerate(PROBS)}


def graded(ex, content):
    return TASK.grade(BY_ID[ex["problem_id"]], content).correct


def check_format(ex, retry=RETRY):
    q, a1, again = ex["prompt"]
    assert q == {"role": "user", "content": BY_ID[ex["problem_id"]].question}
    assert a1["role"] == "assistant" and again == {"role": "user", "content": retry}
    assert [m["role"] for m in ex["chosen"]] == ["assistant"] == [m["role"] for m in ex["rejected"]]
    chosen, rejected = ex["chosen"][0]["content"], ex["rejected"][0]["content"]
    assert graded(ex, chosen) and not graded(ex, rejected)    # chosen right, rejected wrong, per the grader
    return a1["content"], chosen, rejected


def assert_injected(original: str, injected: str, p: int = 13) -> int:
    """The injected attempt equals the original up to one line i whose result alone changed, and every
    later line is recomputed correctly from it: returns i."""
    old, new = parse_lines(original), parse_lines(injected)
    assert old and new and len(old) == len(new)
    i = next(k for k, (a, b) in enumerate(zip(old, new)) if a != b)
    assert new[:i] == old[:i]
    assert new[i][:3] == old[i][:3] and new[i][3] != old[i][3]        # same inputs, wrong result
    assert apply(new[i][1], new[i][0], new[i][2], p) != new[i][3]
    for k in range(i + 1, len(new)):                                    # propagated, no second error
        assert new[k][0] == new[k - 1][3] and new[k][1:3] == old[k][1:3]
        assert apply(new[k][1], new[k][0], new[k][2], p) == new[k][3]
    assert injected.rsplit(">", 1)[1].strip() == str(new[-1][3])
    return i


# ---------------------------------------------------------------- inject_toy_error

def test_injected_error_is_one_wrong_line_propagated_and_graded_wrong():
    task = ArithTask(n_min=2, n_max=6)
    lines_hit, rng = set(), np.random.default_rng(0)
    for p in task.problems(20, seed=1):
        for _ in range(5):
            bad = inject_toy_error(right(p), rng)
            assert not task.grade(p, bad).correct                    # p prime: the final answer always moves
            i = assert_injected(right(p), bad)
            assert first_wrong_line(p, bad) == i                     # the injected line is the first wrong one
            lines_hit.add(i)
    assert lines_hit == set(range(12))                               # every line position can be hit (n up to 6)


def test_inject_is_deterministic_and_rejects_unparsable():
    p = TASK.problems(1, seed=3)[0]
    assert inject_toy_error(right(p), np.random.default_rng(7)) == inject_toy_error(right(p), np.random.default_rng(7))
    assert inject_toy_error("same > 5", np.random.default_rng(0)) is None
    assert inject_toy_error("", np.random.default_rng(0)) is None
    assert inject_toy_error("1 +2 = 3 ; 3 ?4 = 1 ; > 1", np.random.default_rng(0)) is None


# ---------------------------------------------------------------- rise_pairs

def test_rise_counts_and_pairs():
    ds, counts = rise_pairs(REC, PROBS, TASK, RETRY)
    assert counts == {"injected": 3, "natural": 4, "available_injected": 3, "available_natural": 4,
                      "injection": "toy", "injection_failed": 0, "wrong_without_right_sample": 1,
                      "total": 7, "problems": 3}
    assert ds.column_names == ["prompt", "chosen", "rejected", "kind", "problem_id"]
    kinds = {"injected": 0, "natural": 0}
    for ex in ds:
        kinds[ex["kind"]] += 1
        a1, chosen, rejected = check_format(ex)
        pid = ex["problem_id"]
        assert rejected == a1                                        # the wrong attempt 1 repeated
        assert chosen in RIGHTS[pid]                                 # a right attempt of the model itself
        if ex["kind"] == "injected":
            assert a1 not in WRONGS[pid]                             # made by injection, not sampled
            assert first_wrong_line(BY_ID[pid], a1) == assert_injected(chosen, a1)
        else:
            assert a1 in WRONGS[pid]
    assert kinds == {"injected": 3, "natural": 4}
    assert {ex["problem_id"] for ex in ds if ex["kind"] == "injected"} == {PROBS[0].id, PROBS[2].id, PROBS[3].id}


def test_rise_budget_and_determinism():
    a, _ = rise_pairs(REC, PROBS, TASK, RETRY, seed=5)
    b, _ = rise_pairs(REC, PROBS, TASK, RETRY, seed=5)
    assert a.to_list() == b.to_list()
    c, _ = rise_pairs(REC, PROBS, TASK, RETRY, seed=6)
    assert a.to_list() != c.to_list()
    ds, counts = rise_pairs(REC, PROBS, TASK, RETRY, n=5)
    assert len(ds) == 5 == counts["injected"] + counts["natural"] and counts["available_natural"] == 4
    ds, counts = rise_pairs(REC, PROBS, TASK, RETRY, n=0)
    assert len(ds) == 0 and ds.column_names == ["prompt", "chosen", "rejected", "kind", "problem_id"]


class Plain(Task):
    """Not the toy world (no default injection), graded like it."""
    name = "plain"

    def grade(self, problem, text):
        return TASK.grade(problem, text)


def test_rise_without_injection_uses_natural_pairs_only():
    ds, counts = rise_pairs(REC, PROBS, Plain(), RETRY)
    assert counts["injection"] == "none" and counts["injected"] == counts["available_injected"] == 0
    assert counts["natural"] == 4 and {ex["kind"] for ex in ds} == {"natural"}


def test_rise_custom_injection_and_failed_injections():
    def bump(text, rng):  # moves the final answer by 1..3: wrong, not a line edit
        head, final = text.rsplit(">", 1)
        return f"{head}> {(int(final) + int(rng.integers(1, 4))) % 13}"

    ds, counts = rise_pairs(REC, PROBS, Plain(), RETRY, inject=bump)
    assert (counts["injection"], counts["injected"], counts["injection_failed"]) == ("custom", 3, 0)
    for ex in ds:
        check_format(ex)
    ds, counts = rise_pairs(REC, PROBS, TASK, RETRY, inject=lambda text, rng: text)   # still right: skipped
    assert (counts["injected"], counts["injection_failed"], counts["natural"]) == (0, 3, 4)
    ds, counts = rise_pairs(REC, PROBS, TASK, RETRY, inject=lambda text, rng: None)
    assert (counts["injected"], counts["injection_failed"]) == (0, 3)


# ---------------------------------------------------------------- scl_pairs

@pytest.mark.parametrize("n, balance, keep, fix", [
    (None, True, 2, 2),    # strictly balanced: min(2 keep, 4 fix)
    (3, True, 1, 2),       # the budget split evenly, the smaller pool first
    (6, True, 2, 4),       # keep runs short: fix fills the rest
    (None, False, 2, 4),   # unbalanced: everything
])
def test_scl_counts(n, balance, keep, fix):
    ds, counts = scl_pairs(REC, PROBS, TASK, RETRY, n=n, balance=balance)
    assert counts == {"keep": keep, "fix": fix, "available_keep": 2, "available_fix": 4,
                      "right_without_wrong_sample": 1, "wrong_without_right_sample": 1,
                      "total": keep + fix, "problems": counts["problems"]}
    assert sum(ex["kind"] == "keep" for ex in ds) == keep and sum(ex["kind"] == "fix" for ex in ds) == fix


def test_scl_pairs_content():
    ds, _ = scl_pairs(REC, PROBS, TASK, RETRY, balance=False)
    fix_rejected = set()
    for ex in ds:
        a1, chosen, rejected = check_format(ex)
        pid = ex["problem_id"]
        assert rejected in WRONGS[pid] and chosen in RIGHTS[pid]      # the model's own attempts of that problem
        if ex["kind"] == "keep":
            assert a1 == chosen                                        # keeping the right answer is preferred
        else:
            assert a1 in WRONGS[pid]
            fix_rejected.add((a1 == rejected))
    assert {ex["problem_id"] for ex in ds if ex["kind"] == "keep"} == {PROBS[0].id, PROBS[3].id}
    assert fix_rejected == {True, False}   # the rejected is sometimes the copy, sometimes the other wrong attempt


def test_scl_determinism_and_callable_retry():
    retry = lambda p: f"again {p.question}"  # noqa: E731 - the toy dialect's retry restates the question
    a, _ = scl_pairs(REC, PROBS, TASK, retry, seed=3)
    b, _ = scl_pairs(REC, PROBS, TASK, retry, seed=3)
    assert a.to_list() == b.to_list()
    for ex in a:
        check_format(ex, retry=f"again {BY_ID[ex['problem_id']].question}")


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("builder", [rise_pairs, scl_pairs])
def test_clear_errors(builder):
    for bad in ["", "  ", None, 3]:
        with pytest.raises(ValueError, match="retry_message"):
            builder(REC, PROBS, TASK, bad)
    with pytest.raises(ValueError, match="records lack"):
        builder([], PROBS, TASK, RETRY)
    with pytest.raises(ValueError, match="not among the problems"):
        builder(REC, PROBS[:1], TASK, RETRY)
    with pytest.raises(ValueError, match="n must be"):
        builder(REC, PROBS, TASK, RETRY, n=-1)
    empty, counts = builder(REC.iloc[:0], PROBS, TASK, RETRY)   # no rows: an empty set, counted
    assert len(empty) == 0 and counts["total"] == 0


def test_inject_must_be_callable():
    with pytest.raises(ValueError, match="inject"):
        rise_pairs(REC, PROBS, TASK, RETRY, inject="typo")


def test_dpo_rejects_bad_datasets_before_touching_the_model():
    ds, _ = scl_pairs(REC, PROBS, TASK, RETRY)
    with pytest.raises(TypeError, match="not the"):
        dpo(None, None, (ds, {}))
    with pytest.raises(ValueError, match="empty"):
        dpo(None, None, ds.select([]))
    with pytest.raises(ValueError, match="prompt/chosen/rejected"):
        dpo(None, None, ds.rename_column("chosen", "completion"))


def test_registry():
    assert PAIR_BUILDERS == {"rise": rise_pairs, "scl": scl_pairs}
