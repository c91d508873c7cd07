"""The toy world's ground-truth error labels, on hand-written attempts."""
import numpy as np
import pytest

from sclab.tasks.base import Problem
from sclab.toy.labels import form_of, label_attempt, line_kind, revision_split
from sclab.toy.registry import ToyWorld
from sclab.toy.world import apply, error_table, parse_lines, parse_question, render, solve

pytestmark = pytest.mark.unit
W = ToyWorld()
TABLE = error_table(W)
UNSURE = next((k, v[1]) for k, v in sorted(TABLE.items()) if v[0] == "unsure")
MISC = next((k, v[1]) for k, v in sorted(TABLE.items()) if v[0] == "misconception")


def problem_through(entry, n=2) -> Problem:
    """A problem whose first line uses table entry (a, op, c): x0 = a, op1 = op c."""
    (a, op, c) = entry
    other = ("-" if op == "+" else "+", 1)
    q = f"{a} ; {op}{c} {other[0]}{other[1]} ; {n} ?"
    lines = solve(parse_question(q), 13)
    return Problem("t/0", q, str(lines[-1][3]))


def with_line(prob: Problem, i: int, r: int):
    """The clean solution with line i's result set to r and later lines following it."""
    prog = parse_question(prob.question)
    clean = solve(prog, 13)
    prefix = clean[:i] + [(clean[i][0], clean[i][1], clean[i][2], r)]
    return solve(prog, 13, prefix=prefix)


def test_table_has_the_knobs_sizes_and_wrong_values():
    kinds = [k for k, _ in TABLE.values()]
    assert kinds.count("unsure") == W.n_unsure and kinds.count("misconception") == W.n_misconceptions
    for (a, op, c), (_, wrong) in TABLE.items():
        assert wrong != apply(op, a, c, 13) and 0 <= wrong < 13     # a wrong value, a real number
    assert error_table(ToyWorld(table_seed=1)) != TABLE                # the seed picks other entries


def test_clean_solution_has_no_error():
    prob = problem_through(UNSURE[0])
    lab = label_attempt(prob, render(solve(parse_question(prob.question), 13)), W)
    assert lab == {"form": "solve", "split": None, "first_wrong": None, "error_kind": None, "n_wrong": 0,
                   "lucky": False}


@pytest.mark.parametrize("which, kind", [(UNSURE, "unsure"), (MISC, "misconception")])
def test_table_value_is_labelled_with_its_kind(which, kind):
    entry, wrong = which
    prob = problem_through(entry)
    lab = label_attempt(prob, render(with_line(prob, 0, wrong)), W)
    assert (lab["first_wrong"], lab["error_kind"], lab["n_wrong"]) == (0, kind, 1)


def test_any_other_wrong_value_is_a_slip():
    entry, wrong = UNSURE
    prob = problem_through(entry)
    other = next(v for v in range(13) if v not in (wrong, apply(entry[1], entry[0], entry[2], 13)))
    lab = label_attempt(prob, render(with_line(prob, 0, other)), W)
    assert (lab["first_wrong"], lab["error_kind"]) == (0, "slip")
    # a wrong line later in the solution: index 2, and the chain after it is consistent
    lab = label_attempt(prob, render(with_line(prob, 2, (solve(parse_question(prob.question), 13)[2][3] + 5) % 13)), W)
    assert (lab["first_wrong"], lab["n_wrong"]) == (2, 1)


def test_two_wrong_lines_can_cancel_into_a_lucky_hit():
    prob = problem_through(UNSURE[0], n=2)
    prog = parse_question(prob.question)
    clean = solve(prog, 13)
    # line 1 off by +3, line 2 (same chain) off by -3: the final answer is right again
    l1 = (clean[1][0], clean[1][1], clean[1][2], (clean[1][3] + 3) % 13)
    l2a = l1[3]
    l2 = (l2a, clean[2][1], clean[2][2], (apply(clean[2][1], l2a, clean[2][2], 13) - 3) % 13)
    lines = solve(prog, 13, prefix=[clean[0], l1, l2])
    lab = label_attempt(prob, render(lines), W)
    assert lines[-1][3] == int(prob.gold)
    assert lab["lucky"] and lab["n_wrong"] == 2 and lab["first_wrong"] == 1


@pytest.mark.parametrize("text, form", [
    ("same > 4", "keep"),                               # a kept answer, no working
    ("same > x", "malformed"),                          # no number after >
    ("revise 1 +2 = 3 redo 3 -1 = 2 ; > 2", "revise"),  # one line copied, `redo` where its `;` was
    ("revise redo 1 +2 = 3 ; 3 -1 = 2 ; > 2", "malformed"),  # nothing copied: that is a fresh attempt
    ("revise 1 +2 = 3 ; 3 -1 = 2 ; > 2", "malformed"),    # a revision without its split mark
    ("revise 1 +2 = 3 redo 3 -1 = 2 redo > 2", "malformed"),  # two split marks
    ("1 +2 = 3 redo 3 -1 = 2 ; > 2", "malformed"),        # a split mark outside a revision
    ("revise 1 +2 redo = 3 ; > 3", "malformed"),          # a mark inside a line
    ("1 +2 = 3 ; 3 -1 = 2 ; > 2", "solve"),
    ("1 +2 = 3 ; 3 -1 = 2 ;", "malformed"),               # truncated before the answer
    ("1 +2 = 3 ; 3 -1 > 2", "malformed"),                 # a line cut short
    ("garbage", "malformed"),
])
def test_form(text, form):
    assert form_of(text) == form


def test_revision_split_counts_copied_lines():
    assert revision_split("revise 1 +2 = 3 ; 3 -1 = 2 redo 2 +2 = 4 ; > 4") == 2
    assert revision_split("revise 1 +2 = 3 redo 3 -1 = 2 ; > 2") == 1
    assert revision_split("1 +2 = 3 ; > 3") is None
    lines = solve(parse_question("1 ; +2 -1 ; 2 ?"), 13)
    text = render(lines, split=3)
    assert revision_split(text) == 3 and parse_lines(text) == lines
    assert len(text.split()) == len(render(lines).split()) + 1    # only `revise` is added: lines stay 5 tokens
    with pytest.raises(ValueError, match="split"):
        render(lines, split=0)


def test_structure_errors():
    prob = Problem("t/1", "1 ; +2 -1 ; 2 ?", "3")     # 1+2=3, 3-1=2, 2+2=4, 4-1=3
    full = "1 +2 = 3 ; 3 -1 = 2 ; 2 +2 = 4 ; 4 -1 = 3 ; > 3"
    assert label_attempt(prob, full, W)["error_kind"] is None
    # the chain breaks: line 2 starts from 5 instead of 2
    lab = label_attempt(prob, "1 +2 = 3 ; 3 -1 = 2 ; 5 +2 = 7 ; 7 -1 = 6 ; > 6", W)
    assert (lab["first_wrong"], lab["error_kind"]) == (2, "structure")
    # stopped one line early
    lab = label_attempt(prob, "1 +2 = 3 ; 3 -1 = 2 ; 2 +2 = 4 ; > 4", W)
    assert (lab["first_wrong"], lab["error_kind"]) == (3, "structure")
    # right lines, a final answer they do not give
    lab = label_attempt(prob, full.replace("> 3", "> 5"), W)
    assert (lab["first_wrong"], lab["error_kind"]) == (4, "structure")
    assert label_attempt(prob, "nonsense", W)["error_kind"] == "malformed"
    assert label_attempt(prob, "same > 3", W)["form"] == "keep"


def test_line_kind_of_generated_lines_matches_how_they_were_drawn():
    # drawn with slips off, every wrong line comes from the table and is labelled with its kind
    rng = np.random.default_rng(0)
    seen = {"unsure": 0, "misconception": 0}
    for _ in range(3000):
        prog = parse_question(f"{rng.integers(13)} ; +{rng.integers(1, 13)} -{rng.integers(1, 13)} ; 3 ?")
        for a, op, c, r in solve(prog, 13, rng, 0.0, world=W):
            k = line_kind(a, op, c, r, W)
            assert k in (None, "unsure", "misconception")
            if k:
                seen[k] += 1
    assert seen["unsure"] > 0 and seen["misconception"] > 0
