"""The toy world's data: exact arithmetic, slip rate, held-out split, the neutral-base mix."""
import dataclasses

import numpy as np
import pytest

from sclab.tasks.base import Problem
from sclab.toy.build import encode_document, make_tokenizer
from sclab.toy.labels import form_of, label_attempt, line_kind, revision_split
from sclab.toy.registry import RETRY_WORDS, TOY_MODELS, ToyWorld
from sclab.toy.world import (ArithTask, Program, apply, error_table, extract_final, first_wrong_line, is_test_program,
                             line_result, parse_lines, parse_question, render, retry, sample_document, sample_program,
                             solve)

pytestmark = pytest.mark.unit
W = ToyWorld()
# revisions are off in the default world (see ToyWorld.revise_rates); their mechanics are tested on a world with them on
W_REV = dataclasses.replace(W, revise_rates=(("again", 0.3), ("confirm", 0.2), ("check", 0.4)))


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


def test_error_knobs_set_line_frequencies():
    # each table entry drawn 4000 times through line_result: slips at ε everywhere, and on an
    # unsure / misconception entry its fixed wrong value at (1-ε)(1-q) (+ ε/12 from slips)
    rng = np.random.default_rng(10)
    table = error_table(W)
    for kind, right in (("unsure", W.unsure_right), ("misconception", W.misconception_right)):
        (a, op, c), (_, wrong) = next((k, v) for k, v in sorted(table.items()) if v[0] == kind)
        draws = [line_result(a, op, c, 13, rng, W.slip_rate, W) for _ in range(4000)]
        expect = (1 - W.slip_rate) * (1 - right) + W.slip_rate / 12
        got = np.mean([d == wrong for d in draws])
        assert abs(got - expect) < 4 * np.sqrt(expect * (1 - expect) / 4000), (kind, got, expect)
    a, op, c = next((a, op, c) for op in W.ops for c in range(1, 13) for a in range(13) if (a, op, c) not in table)
    draws = [line_result(a, op, c, 13, rng, W.slip_rate, W) for _ in range(8000)]
    got = np.mean([d != apply(op, a, c, 13) for d in draws])
    assert abs(got - W.slip_rate) < 4 * np.sqrt(W.slip_rate / 8000)


def test_held_out_programs_never_in_pretraining():
    rng = np.random.default_rng(1)
    task = ArithTask()
    test_qs = {p.question for p in task.problems(300)}
    for _ in range(3000):
        doc = sample_document(rng, W)
        assert parse_question(doc[0][1]).question() not in test_qs
        assert not is_test_program(parse_question(doc[0][1]), W)


def _retries(n_docs: int, seed: int, world: ToyWorld = W_REV):
    """(word, attempt before, retry, problem) for every retry-word follow-up of n_docs open documents."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_docs):
        doc, loss, _ = sample_document(rng, world, with_loss=True)
        if "options" in doc[0][1]:
            continue  # multiple choice: a guess can land on the answer
        prog = parse_question(doc[0][1])
        prob = Problem("d", doc[0][1], str(solve(prog, 13)[-1][3]))
        worked = doc[1][1]
        for k in range(2, len(doc), 2):
            word = doc[k][1].split()[0]
            if word in RETRY_WORDS:
                out.append((word, worked, doc[k + 1][1], prob, loss[1]))
            if not doc[k + 1][1].startswith("same"):
                worked = doc[k + 1][1]
    return out


def test_retry_behaviours_follow_the_knobs():
    # the share of keep / revise / fresh after each word is the knob's, within 4 standard errors
    for world in (W, W_REV):
        _behaviours_match(_retries(12000, 2, world), world)


def _behaviours_match(rows, world):
    for word in RETRY_WORDS:
        forms = [form_of(r) for w, _, r, _, _ in rows if w == word]
        for form, expect in zip(("keep", "revise", "solve"), world.behaviour_rates(word)):
            got = forms.count(form) / len(forms)
            assert abs(got - expect) < 4 * np.sqrt(expect * (1 - expect) / len(forms)) + 1e-9, (word, form, got)


def test_revisions_copy_verbatim_and_split_independently_of_errors():
    rows = [r for r in _retries(30000, 3) if form_of(r[2]) == "revise"]
    splits = {True: [], False: []}   # split position / (L-1), by "the revised attempt was wrong"
    for _, before, after, prob, _ in rows:
        k = revision_split(after)
        lb, la = parse_lines(before), parse_lines(after)
        assert la[:k] == lb[:k]                       # the copied part is verbatim, slips included
        assert len(la) == len(lb)
        wrong = label_attempt(prob, before, W)["first_wrong"] is not None
        if len(lb) > 2:
            splits[wrong].append((k - 1) / (len(lb) - 2))   # mean 1/2 for every length L: k uniform on 1..L-1
    # k is uniform on 1..L-1 whatever the attempt's errors: the same mean split position
    se = np.sqrt(np.var(splits[True]) / len(splits[True]) + np.var(splits[False]) / len(splits[False]))
    assert abs(np.mean(splits[True]) - np.mean(splits[False])) < 4 * se


def test_pretraining_retries_do_not_correct():
    # Δ of every retry word in the generating process itself: after a first attempt drawn as in
    # pretraining, the retry is right as often as that attempt, within 4 standard errors
    # (keep, revise and fresh never fix; in documents the words' contexts differ - "wrong" is
    # only said after a wrong attempt - so the process is checked directly)
    rng = np.random.default_rng(4)
    for word in RETRY_WORDS + ("wrong",):
        d = []
        for _ in range(6000):
            prog = sample_program(rng, W, "train")
            gold = solve(prog, 13)[-1][3]
            a1 = solve(prog, 13, rng, W.slip_rate, world=W)
            _, final, text, _ = retry(rng, W_REV, prog, a1, a1[-1][3], word)
            assert extract_final(text) == str(final)
            d.append((final == gold) - (a1[-1][3] == gold))
        d = np.array(d)
        assert abs(d.mean()) < 4 * d.std() / np.sqrt(len(d)), (word, d.mean())


def test_copied_results_are_marked_for_the_build():
    # the word positions `retry` returns are exactly the copied lines' results in the text
    rng = np.random.default_rng(7)
    prog = parse_question("3 ; +4 -2 ; 4 ?")
    marked = 0
    for _ in range(300):
        a1 = solve(prog, 13, rng, 0.3, world=W)
        _, _, text, pos = retry(rng, W_REV, prog, a1, a1[-1][3], "check")
        words = text.split()
        if form_of(text) == "revise":
            k = revision_split(text)
            assert [words[i] for i in pos] == [str(r) for *_, r in a1[:k]]
            marked += len(pos)
        else:
            assert pos == []
    assert marked > 0


def test_conflict_documents_are_context_only():
    # first attempts of conflict documents carry no loss and slips at conflict_slip_rate
    rng = np.random.default_rng(5)
    world = dataclasses.replace(W, conflict_rate=0.4)   # off by default (see ToyWorld.conflict_rate)
    masked = slips = lines = n = 0
    for _ in range(20000):
        doc, loss, _ = sample_document(rng, world, with_loss=True)
        n += 1
        assert loss[0::2] == [False] * len(loss[0::2])   # user turns never carry loss
        assert all(loss[3::2])                            # follow-up attempts always do
        if not loss[1]:
            masked += 1
            assert len(doc) > 2                           # only documents with follow-ups
            for a, op, c, r in parse_lines(doc[1][1]):
                lines += 1
                slips += line_kind(a, op, c, r, W) == "slip"
    expect = world.followup_rate * world.conflict_rate
    assert abs(masked / n - expect) < 4 * np.sqrt(expect * (1 - expect) / n)
    # slips drawn at conflict_slip_rate, less the few that land on a table entry's wrong value
    assert abs(slips / lines - world.conflict_slip_rate) < 0.015


def test_tokenizer_matches_training_encoding():
    tok = make_tokenizer(W)
    vocab = tok.get_vocab()
    rng = np.random.default_rng(3)
    for _ in range(20):
        msgs, loss, _ = sample_document(rng, W, with_loss=True)
        ids, labels = encode_document(msgs, vocab, loss)
        text = tok.apply_chat_template([{"role": r, "content": c} for r, c in msgs], tokenize=False)
        assert tok(text, add_special_tokens=False)["input_ids"] == ids
        # only assistant content (and its <eos>) of turns that carry loss is learned
        assert sum(l != -100 for l in labels) == sum(len(c.split()) + 1 for (r, c), l in zip(msgs, loss)
                                                     if r == "assistant" and l)


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
