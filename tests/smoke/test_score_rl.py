"""SCoRe on TRL's GRPOTrainer with the real toy model: two-attempt rollouts, masks, per-turn credit,
per-turn KL, and a few real optimizer steps."""
import copy

import pytest
import torch

from sclab.models import load
from sclab.generate import Generator, SamplingParams
from sclab.toy.world import ArithTask
from sclab.train.score import score_train, score_trainer, turn_returns, group_advantages

pytestmark = pytest.mark.smoke
TASK = ArithTask(n_min=1, n_max=2)  # short solutions: each RL step well under a second
PROBS = TASK.problems(16, split="train", seed=3)


@pytest.fixture(scope="module")
def toy():
    return load("toy:arith")


def _batch(trainer, n_prompts=4):
    """One generation batch as TRL's sampler feeds it: each prompt repeated num_generations times."""
    ng = trainer.num_generations
    return [{"prompt": [{"role": "user", "content": TASK.prompt(p)}], "problem_id": p.id}
            for p in PROBS[:n_prompts] for _ in range(ng)]


def test_rollout_masks_both_attempts_and_not_the_instruction(toy):
    model, tok = toy
    tr = score_trainer(model, tok, TASK, PROBS, stage="II", alpha=10.0, steps=1, prompts_per_step=4,
                       num_generations=4, max_new_tokens=32, progress=False)
    inputs = _batch(tr)
    out = tr._generate_and_score_completions(inputs)
    turns, mask = out["turn_of_token"], out["completion_mask"] * out["tool_mask"]
    ids = out["completion_ids"]
    for i, x in enumerate(inputs):
        t = turns[i]
        assert (t == 1).any() and (t == 2).any()                       # both attempts carry loss...
        assert torch.equal(mask[i].bool() & (t == 0), torch.zeros_like(t, dtype=torch.bool))  # ...nothing else
        assert torch.equal(mask[i].bool(), t > 0)
        injected = tok.decode(ids[i][(t == 0) & (out["completion_mask"][i] == 1)])
        assert injected.split()[:2] == ["<user>", "check"] and injected.split()[-1] == "<assistant>"
        # the rewards were graded on the attempts themselves, not parsed out of the joined text
        a1 = tok.decode(ids[i][t == 1], skip_special_tokens=True)
        a2 = tok.decode(ids[i][t == 2], skip_special_tokens=True)
        prob = next(p for p in PROBS if p.id == x["problem_id"])
        assert x["r1"] == float(TASK.grade(prob, a1).correct)
        assert x["r2"] == float(TASK.grade(prob, a2).correct)
    # per-token advantages are the per-turn group advantages of turn_returns, recomputed here
    r1 = torch.tensor([x["r1"] for x in inputs])
    r2 = torch.tensor([x["r2"] for x in inputs])
    ret1, ret2 = turn_returns(r1, r2, "II", alpha=10.0)
    a1, a2 = group_advantages(ret1, 4), group_advantages(ret2, 4)
    adv = out["advantages"]
    for i in range(len(inputs)):
        assert torch.allclose(adv[i][turns[i] == 1], a1[i].expand(int((turns[i] == 1).sum())))
        assert torch.allclose(adv[i][turns[i] == 2], a2[i].expand(int((turns[i] == 2).sum())))
    # no sabotage: within a group, a right attempt 1 never gets less attempt-1 credit than a wrong one
    # followed by the same attempt-2 outcome
    for g in range(0, len(inputs), 4):
        for i in range(g, g + 4):
            for j in range(g, g + 4):
                if r2[i] == r2[j] and r1[i] > r1[j]:
                    assert a1[i] > a1[j]


def test_training_changes_a_copy_and_logs_per_turn_signals(toy):
    model, tok = toy
    before = copy.deepcopy(model.state_dict())
    tuned, log = score_train(model, tok, TASK, PROBS, stage="II", alpha=2.0, beta_turn1=1.0, beta_turn2=0.01,
                             steps=3, lr=1e-3, prompts_per_step=4, num_generations=2, max_new_tokens=32,
                             eval_problems=PROBS[:6], eval_every=3, progress=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)          # the caller's model is untouched
    moved = sum((tuned.state_dict()[k] - before[k]).abs().sum().item() for k in before)
    assert moved > 0
    for col in ("rewards/reward_turn1/mean", "rewards/reward_turn2/mean", "score/credit_turn1",
                "score/credit_turn2", "kl/turn1", "kl/turn2", "eval_acc_t1", "eval_acc_t2", "eval_changed"):
        assert col in log.columns, col
    steps = log.dropna(subset=["score/acc_t1"])
    assert len(steps) == 3
    # on-policy accuracy: a share of the 4 x 2 rollouts of a step, the same number as TRL's raw reward
    for t in (1, 2):
        acc = steps[f"score/acc_t{t}"]
        assert ((acc * 8).round() == acc * 8).all(), acc.tolist()
        assert (steps[f"rewards/reward_turn{t}/mean"] - acc).abs().max() < 1e-6
    # the shaped credits are stage II's, written out (means are linear): r1 + r2, and r2 + α(r2 − r1) with α 2
    a1, a2 = steps["score/acc_t1"], steps["score/acc_t2"]
    assert (steps["score/credit_turn1"] - (a1 + a2)).abs().max() < 1e-6
    assert (steps["score/credit_turn2"] - (a2 + 2.0 * (a2 - a1))).abs().max() < 1e-6
    assert log.dropna(subset=["eval_acc_t1"])["step"].tolist() == [0, 3]
    # TRL's fused-head patch is gone: a copy of the tuned model generates with its own weights
    assert "forward" not in tuned.__dict__
    twin = copy.deepcopy(tuned)
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(0)
    conv = [[{"role": "user", "content": TASK.prompt(PROBS[0])}]]
    sp = SamplingParams(temperature=0, max_new_tokens=16)
    a = Generator(tuned, tok, cache=False, progress=False).generate(conv, sp)[0][0].text
    b = Generator(twin, tok, cache=False, progress=False).generate(conv, sp)[0][0].text
    assert a != b


def test_single_turn_rollouts_have_one_attempt(toy):
    model, tok = toy
    tr = score_trainer(model, tok, TASK, PROBS, stage="single", steps=1, prompts_per_step=2, num_generations=2,
                       max_new_tokens=32, progress=False)
    out = tr._generate_and_score_completions(_batch(tr, 2))
    t = out["turn_of_token"]
    assert not (t == 2).any() and (t == 1).any()
    assert out["advantages"].shape == out["completion_ids"].shape


def test_bad_arguments_fail_before_training(toy):
    model, tok = toy
    with pytest.raises(ValueError, match="stage must be one of"):
        score_train(model, tok, TASK, PROBS, stage="III")
    with pytest.raises(ValueError, match="num_generations"):
        score_train(model, tok, TASK, PROBS, num_generations=1)
    with pytest.raises(ValueError, match="one-message second turn"):
        score_train(model, tok, TASK, PROBS, strategy="oracle-feedback")
    with pytest.raises(TypeError, match="unknown GRPOConfig"):
        score_train(model, tok, TASK, PROBS, steps=1, not_a_field=3)
    with pytest.raises(ValueError, match="beta_turn1"):
        score_train(model, tok, TASK, PROBS, steps=1, beta_turn1=-1.0)


class _FakeVLLM:
    """Stands in for TRL's VLLMGeneration: answers every context with the problem's reference solution."""

    def __init__(self, tok, solutions):
        self.tok, self.solutions, self.max_completion_length, self.seen = tok, solutions, 999, []

    def generate(self, prompts, images, num_generations):
        self.seen.append(self.max_completion_length)
        comp = []
        for ids in prompts:
            text = self.tok.decode(ids)
            sol = next(s for q, s in self.solutions.items() if q in text)
            comp.append(self.tok(sol + " <eos>", add_special_tokens=False)["input_ids"])
        return prompts, comp, [[[-0.1]] * len(c) for c in comp], None


def test_rollout_through_trls_vllm_engine(toy):
    from types import SimpleNamespace

    from sclab.train.score import TwoAttemptRollout

    model, tok = toy
    probs = PROBS[:2]
    fake = _FakeVLLM(tok, {TASK.prompt(p): p.meta["solution"] for p in probs})
    trainer = SimpleNamespace(use_vllm=True, vllm_generation=fake, processing_class=tok,
                              accelerator=SimpleNamespace(unwrap_model=lambda m: m), model=model)
    roll = TwoAttemptRollout(TASK, probs, "score-instruction", max_new_tokens=40)
    out = roll([[{"role": "user", "content": TASK.prompt(p)}] for p in probs for _ in range(2)], trainer)
    assert fake.seen == [40, 40] and fake.max_completion_length == 999   # one attempt's budget, restored
    assert out["r1"] == [1.0] * 4 and out["r2"] == [1.0] * 4 and out["changed"] == [0.0] * 4
    for ids, lps, mask in zip(out["completion_ids"], out["logprobs"], out["env_mask"]):
        assert len(ids) == len(lps) == len(mask)
        assert all(lp == -0.1 for lp, m in zip(lps, mask) if m) and all(lp == 0.0 for lp, m in zip(lps, mask) if not m)
