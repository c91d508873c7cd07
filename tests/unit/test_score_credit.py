"""SCoRe credit assignment without a model: per-turn returns, group baselines, per-token advantages,
and the injected-turn tokens of a two-attempt sequence."""
import pytest
import torch

from sclab.train.score import group_advantages, injected_ids, token_advantages, turn_returns

pytestmark = pytest.mark.unit

# one prompt group: (r1, r2) = keep-right, fix, stay-wrong, break
R1 = [1.0, 0.0, 0.0, 1.0]
R2 = [1.0, 1.0, 0.0, 0.0]


def test_stage2_bonus_goes_to_attempt_two_only():
    ret1, ret2 = turn_returns(R1, R2, "II", alpha=10.0)
    assert ret1.tolist() == [2.0, 1.0, 0.0, 1.0]            # r1 + r2: no bonus on attempt 1
    assert ret2.tolist() == [1.0, 11.0, 0.0, -10.0]         # r2 + α(r2 − r1)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0, 10.0])
def test_no_reward_for_a_wrong_first_attempt(alpha):
    """The sabotage trap: with the bonus on attempt-1 tokens too, their credit is
    (1 − α)·r1 + (1 + α)·r2, so for α > 1 a wrong attempt 1 followed by a right attempt 2 outscores a
    right one. Attempt-1 credit must never decrease when r1 goes from 0 to 1 at fixed r2."""
    for r2 in (0.0, 1.0):
        ret1, _ = turn_returns([0.0, 1.0], [r2, r2], "II", alpha=alpha)
        assert ret1[1] > ret1[0]
        a1 = group_advantages(ret1, 2)
        assert a1[1] > a1[0]
    # and the buggy whole-trajectory credit does reward sabotage once α > 1 (what the test guards against)
    buggy = lambda r1, r2: r1 + r2 + alpha * (r2 - r1)
    if alpha > 1:
        assert buggy(0.0, 1.0) > buggy(1.0, 1.0)


def test_stage1_credits_both_attempts_with_r2_and_single_turn_with_r1():
    ret1, ret2 = turn_returns(R1, R2, "I")
    assert ret1.tolist() == R2 and ret2.tolist() == R2
    ret1, ret2 = turn_returns(R1, R2, "single")
    assert ret1.tolist() == R1 and ret2.tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="stage must be one of"):
        turn_returns(R1, R2, "III")


def test_group_advantages_match_trl_formula():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 3.0])
    a = group_advantages(r, 4)
    g = r.view(2, 4)
    expect = ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).view(-1)
    assert torch.allclose(a, expect)
    assert torch.all(a[4:] == 0)                      # a group with one reward carries no signal
    assert torch.allclose(group_advantages(r, 4, "none"), (g - g.mean(1, keepdim=True)).view(-1))
    with pytest.raises(ValueError, match="scale"):
        group_advantages(r, 4, "nope")


def test_token_advantages_follow_the_turn_labels():
    turns = torch.tensor([[1, 1, 0, 0, 2, 2], [1, 0, 2, 0, 0, 0]])  # 0: injected turn or padding
    adv = token_advantages(turns, torch.tensor([0.5, -1.0]), torch.tensor([2.0, 3.0]))
    assert adv.tolist() == [[0.5, 0.5, 0.0, 0.0, 2.0, 2.0], [-1.0, 0.0, 3.0, 0.0, 0.0, 0.0]]


class _Tok:
    """A minimal chat tokenizer: one id per whitespace word, `<eos>` ends a turn, like the toy template."""

    def __init__(self):
        self.vocab = {}

    def _ids(self, text):
        return [self.vocab.setdefault(w, len(self.vocab)) for w in text.split()]

    def apply_chat_template(self, messages, tokenize=True, return_dict=True, add_generation_prompt=False):
        text = " ".join(f"<{m['role']}> {m['content']} <eos>" for m in messages)
        if add_generation_prompt:
            text += " <assistant>"
        return {"input_ids": self._ids(text)}


def test_injected_ids_are_the_user_turn_and_assistant_header():
    tok = _Tok()
    conv = [{"role": "user", "content": "1 ; +2 ; 1 ?"}]
    ids = injected_ids(tok, conv, "1 +2 = 3 ; > 3", "check 1 ; +2 ; 1 ?", eos_ids=[tok._ids("<eos>")[0]])
    inv = {v: k for k, v in tok.vocab.items()}
    assert [inv[i] for i in ids] == "<user> check 1 ; +2 ; 1 ? <eos> <assistant>".split()
