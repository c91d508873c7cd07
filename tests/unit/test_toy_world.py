"""The toy world's data: exact arithmetic, slip rate, held-out split, the neutral-base mix."""
import numpy as np
import pytest

from sclab.toy.build import encode_document, make_tokenizer
from sclab.toy.registry import TOY_MODELS, ToyWorld
from sclab.toy.world import (ArithTask, Program, extract_final, first_wrong_line, is_test_program, parse_lines,
                             parse_question, render, sample_document, solve)

pytestmark = pytest.mark.unit
W = ToyWorld()


@pytest.mark.parametrize("prog, lines", [
    # 7+3=10, 10*5=50=11 (mod 13): one repetition, two lines (solve knows "*" too)
    (Program(7, (("+", 3), ("*", 5)), 1), [(7, "+", 3, 10), (10, "*", 5, 11)]),
    # 2-5=-3=10, 10+1=11, 11-5=6, 6+1=7
    (Program(2, (("-", 5), ("+", 1)), 2), [(2, "-", 5, 10), (10, "+", 1, 11), (11, "-", 5, 6), (6, "+", 1, 7)]),
    # 12*12=144=1 (mod 13), 1*1=1
    (Program(12, (("*", 12), ("*", 1)), 1), [(12, "*", 12, 1), (1, "*", 1, 1)]),
])
def test_solve_exact(prog, lines):
    assert solve(prog, 13) == lines
    assert render(lines).endswith(f"> {lines[-1][3]}")
    assert parse_lines(render(lines)) == lines


def test_slip_rate_matches_epsilon():
    # per-line slip frequency over 20k lines should be ε = 0.05 within sampling error (±0.01)
    rng = np.random.default_rng(0)
    slips = total = 0
    prog = Program(3, (("+", 4), ("-", 2)), 5)
    for _ in range(2000):
        lines = solve(prog, 13, rng, 0.05)
        for a, op, c, r in lines:
            slips += (r != solve(Program(a, ((op, c), (op, c)), 1), 13)[0][3])
            total += 1
    assert abs(slips / total - 0.05) < 0.01


def test_held_out_programs_never_in_pretraining():
    rng = np.random.default_rng(1)
    task = ArithTask()
    test_qs = {p.question for p in task.problems(300)}
    for _ in range(3000):
        doc = sample_document(rng, W)
        assert parse_question(doc[0][1]).question() not in test_qs
        assert not is_test_program(parse_question(doc[0][1]), W)


def test_neutral_base_mix():
    # after "again" a retry is a copy (rate c) or an independent attempt: with f_n the accuracy
    # of a fresh attempt at difficulty n, P(fix | wrong) = (1-c) f_n and P(break | right) =
    # (1-c)(1-f_n) - the pretraining data holds no correction skill
    rng = np.random.default_rng(2)
    first = {}   # n -> [attempts, right]
    trans = {}   # (n, a1 right) -> [retries, right at 2]
    for _ in range(30000):
        doc = sample_document(rng, W)
        prog = parse_question(doc[0][1])
        n = prog.n
        if "options" in doc[0][1]:
            continue  # multiple choice: a guess can land on the answer
        gold = str(solve(prog, 13)[-1][3])
        f = first.setdefault(n, [0, 0])
        f[0] += 1
        f[1] += extract_final(doc[1][1]) == gold
        for k in range(1, len(doc) - 2, 2):
            if doc[k + 1][1].startswith("again "):
                t = trans.setdefault((n, extract_final(doc[k][1]) == gold), [0, 0])
                t[0] += 1
                t[1] += extract_final(doc[k + 2][1]) == gold
    c = dict(W.copy_rates)["again"]
    for n in range(1, 7):
        f_n = first[n][1] / first[n][0]
        for a1_right, expect in ((False, (1 - c) * f_n), (True, 1 - (1 - c) * (1 - f_n))):
            m, r = trans[(n, a1_right)]
            se = np.sqrt(expect * (1 - expect) / m)
            assert abs(r / m - expect) < 4 * se + 0.02, (n, a1_right, r / m, expect)


def test_tokenizer_matches_training_encoding():
    tok = make_tokenizer(W)
    vocab = tok.get_vocab()
    rng = np.random.default_rng(3)
    for _ in range(20):
        msgs = sample_document(rng, W)
        ids, labels = encode_document(msgs, vocab)
        text = tok.apply_chat_template([{"role": r, "content": c} for r, c in msgs], tokenize=False)
        assert tok(text, add_special_tokens=False)["input_ids"] == ids
        # only assistant content (and its <eos>) is learned
        assert sum(l != -100 for l in labels) == sum(len(c.split()) + 1 for r, c in msgs if r == "assistant")


@pytest.mark.parametrize("text, expected", [
    ("1 + 2 = 3 ; > 3", "3"),          # the final answer after ">"
    ("1 + 2 = 3 ; > 3 > 5", "5"),      # the last ">" wins
    ("1 + 2 = 3 ;", None),             # truncated before ">": an extraction failure
    ("> ;", None),                     # not a number
])
def test_extract_final(text, expected):
    assert extract_final(text) == expected


def test_grade_and_first_wrong_line():
    task = ArithTask()
    p = task.problems(1, seed=5)[0]
    g = task.grade(p, p.meta["solution"])
    assert g.correct and g.how == "toy-final" and g.extracted == p.gold
    assert task.grade(p, "garbage").how == "none"
    lines = parse_lines(p.meta["solution"])
    bad = list(lines)
    a, op, c, r = bad[1]
    bad[1] = (a, op, c, (r + 1) % 13)
    assert first_wrong_line(p, render(bad)) == 1
    assert first_wrong_line(p, p.meta["solution"]) is None


def test_problems_deterministic_and_split():
    t = ArithTask()
    assert [p.question for p in t.problems(50, seed=3)] == [p.question for p in t.problems(50, seed=3)]
    train = {p.question for p in t.problems(200, split="train")}
    test = {p.question for p in t.problems(200, split="test")}
    assert not train & test
    with pytest.raises(ValueError, match="split"):
        t.problems(5, split="dev")


def test_registry_fingerprints_differ():
    assert TOY_MODELS["arith"].fingerprint() != TOY_MODELS["arith-tiny"].fingerprint()


def test_doubt_prior_flips_the_answer_without_new_working():
    # after "sure ?" the answer is restated ("same > r"), flipped at doubt_change_rate
    rng = np.random.default_rng(4)
    flips = n = 0
    for _ in range(20000):
        doc = sample_document(rng, W)
        for k in range(1, len(doc) - 2, 2):
            if doc[k + 1][1].startswith("sure ? "):
                before, after = doc[k][1], doc[k + 2][1]
                assert after.startswith("same > ")
                flips += extract_final(before) != extract_final(after)
                n += 1
    rate = W.doubt_change_rate
    assert abs(flips / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n)


def test_multiple_choice_problem():
    t = ArithTask()
    p = t.problems(1, seed=9)[0]
    mc = t.as_multiple_choice(p, ["1", "1", p.gold])   # duplicates and the gold are not distractors
    opts = mc.meta["options"]
    assert len(opts) == 4 and int(p.gold) in opts and len(set(opts)) == 4
    assert mc.question == "options " + " ".join(map(str, opts)) + " ; " + p.question
    assert t.grade(mc, p.meta["solution"]).correct


def test_followups_restate_the_question():
    rng = np.random.default_rng(6)
    for _ in range(300):
        doc = sample_document(rng, W)
        for role, content in doc[2::2]:
            assert role == "user" and content.endswith(doc[0][1])
