"""Training-set builders on a hand-made records table: counts, balance, masking format, determinism, budgets."""
import pytest

from sclab.strategies import get_strategy
from sclab.toy.world import ArithTask
from sclab.train.data import cct_sft, pair_sft, star_sft, vanilla_sft
from toy_records import BY_ID, EPISODES, PROBS, R, TASK, W1, W2, records, right, text, wrong  # noqa: F401

pytestmark = pytest.mark.unit
RETRY = get_strategy("retry").messages("toy")[0]  # "again"


REC = records()


def is_right(ex, content):
    return TASK.grade(BY_ID[ex["problem_id"]], content).correct


def test_vanilla_counts_and_format():
    ds, counts = vanilla_sft(REC, PROBS, TASK)
    assert counts == {"vanilla": 3, "available_vanilla": 3, "total": 3, "problems": 3}
    for ex in ds:
        assert ex["prompt"] == [{"role": "user", "content": BY_ID[ex["problem_id"]].question}]
        assert len(ex["completion"]) == 1 and ex["completion"][0]["role"] == "assistant"
        assert is_right(ex, ex["completion"][0]["content"])


@pytest.mark.parametrize("n, balance, confidence, critique", [
    (None, True, 3, 3),    # strictly balanced: min(3 confidence, 4 critique) of each
    (4, True, 2, 2),       # an even split of the budget
    (7, True, 3, 4),       # the confidence pool runs short (3): critique fills the rest
    (10, True, 3, 4),      # more than available: everything (7)
    (None, False, 3, 4),   # unbalanced: everything
    (0, True, 0, 0),       # an empty budget
])
def test_cct_counts_and_balance(n, balance, confidence, critique):
    ds, counts = cct_sft(REC, PROBS, TASK, RETRY, n=n, balance=balance)
    assert (counts["confidence"], counts["critique"]) == (confidence, critique)
    assert counts["available_confidence"] == 3 and counts["available_critique"] == 4
    assert counts["wrong_without_right_sample"] == 1   # P1's wrong attempt
    assert counts["total"] == len(ds) == confidence + critique
    assert sorted(ds["kind"]) == sorted(["confidence"] * confidence + ["critique"] * critique)


def test_cct_examples_are_confidence_or_critique():
    ds, _ = cct_sft(REC, PROBS, TASK, RETRY)
    for ex in ds:
        a1, retry, a2 = ex["completion"]
        assert retry == {"role": "user", "content": "again"}
        assert is_right(ex, a2["content"])                       # attempt 2 is always right
        if ex["kind"] == "confidence":
            assert a1 == a2                                      # a right attempt 1 is kept as it is
        else:
            assert not is_right(ex, a1["content"])               # a wrong attempt 1, fixed
        assert ex["problem_id"] != PROBS[1].id or ex["kind"] == "confidence"  # P1 has no right sample


def test_pam_masks_attempt_one_cct_trains_both():
    cct, _ = cct_sft(REC, PROBS, TASK, RETRY, mask_first=False)
    pam, _ = cct_sft(REC, PROBS, TASK, RETRY, mask_first=True)
    for c, p in zip(cct, pam):
        # the same conversations, split differently between prompt (no loss) and completion (loss)
        assert c["prompt"] + c["completion"] == p["prompt"] + p["completion"]
        assert [m["role"] for m in c["prompt"]] == ["user"]
        assert [m["role"] for m in c["completion"]] == ["assistant", "user", "assistant"]
        assert [m["role"] for m in p["prompt"]] == ["user", "assistant", "user"]
        assert [m["role"] for m in p["completion"]] == ["assistant"]
        assert p["prompt"][1] == c["completion"][0]              # PAM's prompt holds attempt 1


def test_deterministic_for_a_seed():
    for build in (lambda s: vanilla_sft(REC, PROBS, TASK, n=2, seed=s),
                  lambda s: cct_sft(REC, PROBS, TASK, RETRY, n=4, seed=s),
                  lambda s: pair_sft(REC, PROBS, TASK, RETRY, n=2, seed=s),
                  lambda s: star_sft(REC, PROBS, TASK, n=2, seed=s)):
        a, b = build(0)[0].to_list(), build(0)[0].to_list()
        assert a == b
        # another seed draws another subset or order (6 seeds: the chance all coincide is negligible)
        assert any(build(s)[0].to_list() != a for s in range(1, 7))


def test_budgets_equalised():
    sizes = [len(vanilla_sft(REC, PROBS, TASK, n=3)[0]), len(cct_sft(REC, PROBS, TASK, RETRY, n=3)[0]),
             len(pair_sft(REC, PROBS, TASK, RETRY, n=3)[0]), len(star_sft(REC, PROBS, TASK, n=3)[0])]
    assert sizes == [3, 3, 3, 3]


def test_pair_sft_wrong_to_right():
    ds, counts = pair_sft(REC, PROBS, TASK, RETRY)
    assert counts == {"pair": 4, "available_pair": 4, "wrong_without_right_sample": 1, "total": 4, "problems": 2}
    for ex in ds:
        q, a1, retry = ex["prompt"]                              # loss on the right attempt only by default
        assert not is_right(ex, a1["content"]) and is_right(ex, ex["completion"][0]["content"])


def test_star_takes_actual_revisions():
    ds, counts = star_sft(REC, PROBS, TASK)
    assert counts == {"star": 4, "available_star": 4, "total": 4, "problems": 3}   # P0 s2, P1 s0, P3 s0, P3 s2
    got = sorted((ex["problem_id"], ex["prompt"][1]["content"], ex["completion"][0]["content"]) for ex in ds)
    want = sorted([(PROBS[0].id, wrong(PROBS[0], 1), right(PROBS[0])), (PROBS[1].id, wrong(PROBS[1], 1), right(PROBS[1])),
                   (PROBS[3].id, wrong(PROBS[3], 1), right(PROBS[3])), (PROBS[3].id, wrong(PROBS[3], 2), right(PROBS[3]))])
    assert got == want
    # the retry turn as run_episodes said it: the toy dialect restates the question
    by_id = {p.id: p for p in PROBS}
    assert all(ex["prompt"][2] == {"role": "user", "content": f"again {by_id[ex['problem_id']].question}"}
               for ex in ds)


def test_star_rebuilds_a_two_step_strategy():
    class ChatArith(ArithTask):
        dialect = "chat"
        answer_format = "after >."

    task = ChatArith(n_min=1, n_max=1)
    rec = records(strategy="huang-review", feedback="line 2 slipped", task=task)
    ds, _ = star_sft(rec, PROBS, task, n=1)
    review, improve = get_strategy("huang-review").messages("chat", "after >.")
    roles = [(m["role"], m["content"]) for m in ds[0]["prompt"][2:]]
    # the review request, the model's review (from `feedback`), then the improve request
    assert roles == [("user", review), ("assistant", "line 2 slipped"), ("user", improve)]


def test_no_right_samples_gives_an_empty_set():
    rec = REC[REC.problem_id == PROBS[1].id]
    ds, counts = cct_sft(rec, PROBS, TASK, RETRY)
    assert len(ds) == 0 and counts["total"] == 0 and counts["wrong_without_right_sample"] == 1


@pytest.mark.parametrize("call, match", [
    (lambda: vanilla_sft(REC, PROBS[:2], TASK), "not among the problems"),    # records of problems not given
    (lambda: vanilla_sft(REC.drop(columns="correct"), PROBS, TASK), "correct"),  # a missing column is named
    (lambda: cct_sft(REC, PROBS, TASK, ""), "retry_message"),                   # an empty retry turn
    (lambda: vanilla_sft(REC, PROBS, TASK, n=-1), "n must be"),                  # a negative budget
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sft_rejects_builder_pair_and_empty_set():
    from sclab.train.sft import sft

    pair = vanilla_sft(REC, PROBS, TASK)
    with pytest.raises(TypeError, match="not the \\(dataset, counts\\) pair"):
        sft(None, None, pair)                                    # fails before any model is touched
    with pytest.raises(ValueError, match="empty"):
        sft(None, None, cct_sft(REC[REC.problem_id == PROBS[1].id], PROBS, TASK, RETRY)[0])
