"""The world card on the toy model, on a small sample: the neutral-base check and the labels in
every record (the full check is 00_quickstart's quick run: 1000 problems x 2 samples)."""
import pytest

from sclab.generate import Generator, SamplingParams
from sclab.models import load
from sclab.toy.card import format_card, measure_world
from sclab.toy.world import ArithTask

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def card_and_records():
    lm, tok = load("toy:arith")
    task = ArithTask()
    problems = task.problems(150, seed=11)   # 150 x 2 samples: ~20 s on 2 cores
    gen = Generator(lm, tok, batch_size=64, cache=False, progress=False)
    return measure_world(gen, task, problems, SamplingParams(n=2, max_new_tokens=160, seed=3),
                         words=("check",), n_boot=200)


def test_neutral_base_on_a_small_sample(card_and_records):
    card, _ = card_and_records
    d = card["check"]
    # 300 pairs: Δ's standard error is ~0.025, so a neutral base stays within ±0.08 (3 SE)
    assert abs(d["delta"]) < 0.08 and d["delta_lo"] < 0.02 < d["delta_hi"] + 0.04
    # the retry does what pretraining taught after "check": mostly revise or redo, rarely keep
    b = d["behaviour"]
    assert b["keep"] + b["revise"] + b["solve"] > 0.85 and b["revise"] + b["solve"] > b["keep"]
    assert 0.3 < card["t1_acc"] < 0.85 and card["greedy_acc"] > card["t1_acc"]
    assert "check" in format_card(card)


def test_every_attempt_is_labelled(card_and_records):
    _, recs = card_and_records
    df = recs["check"]
    wrong1 = df[(df.turn == 1) & ~df.correct]
    assert len(wrong1) and wrong1.error_kind.notna().all()
    right = df[df.correct & (df.form != "keep")]
    # a right answer without a wrong line has no error kind; a lucky hit has one and says so
    assert (right.error_kind.isna() | right.lucky).all()
    # a kept answer inherits the labels of the attempt it keeps
    kept = df[(df.turn == 2) & (df.form == "keep")].set_index(["problem_id", "sample"])
    first = df[df.turn == 1].set_index(["problem_id", "sample"]).loc[kept.index]
    assert (kept.error_kind.fillna("-") == first.error_kind.fillna("-")).all()


def test_toy_info_prints_the_card(capsys):
    from sclab.cli import main

    assert main(["toy", "info", "arith-tiny"]) == 0     # arith-tiny builds in seconds
    out = capsys.readouterr().out
    assert "slip_rate" in out and "keep_rates" in out and "not measured yet" in out
    assert main(["toy", "info", "no-such-world"]) == 2
    assert "valid toy models: arith, arith-b, arith-tiny" in capsys.readouterr().err
