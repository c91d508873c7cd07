"""sclab.sharpening.amortise on the shipped toy model: GRPO's reward is the frozen base's teacher-forced
log-prob (an independent forward pass agrees), a few RL steps move a copy and leave the base and the reward
model alone, SFT on a pool's picks trains toward them, and the single-sample and line statistics equal
independent computations."""
import dataclasses

import pytest
import torch

from sclab.generate import Generator, SamplingParams
from sclab.rollout import first_turn
from sclab.sharpening import (kl_coefficient, line_marginals, rl_sharpen, rl_sharpen_trainer, sample_pool,
                              sft_dataset, sft_picks, single_sample_stats)
from sclab.toy.world import ArithTask
from sclab.train import sft

pytestmark = pytest.mark.smoke
TASK = ArithTask(n_min=1, n_max=2)        # 2-4 line solutions: a GRPO step of 16 samples < 1 s on one core
TRAIN = TASK.problems(16, split="train", seed=3)
HELD = TASK.problems(8, split="test", seed=3)
TOL = 1e-4                                 # float32 on CPU: batched and padded vs one unpadded forward pass


def forward_logprobs(model, prompt, completion):
    """Independent reference: one unpadded forward pass, log softmax at T = 1 at each completion position."""
    with torch.no_grad():
        logits = model(torch.tensor([list(prompt) + list(completion)])).logits[0, len(prompt) - 1:-1].float()
    return torch.log_softmax(logits, -1)


def test_the_reward_is_the_frozen_bases_logprob_of_what_grpo_sampled(toy):
    model, tok = toy
    tr = rl_sharpen_trainer(model, tok, TASK, TRAIN, beta=0.5, steps=1, num_generations=4, prompts_per_step=4,
                            max_new_tokens=24, progress=False)
    reward = tr.sclab_reward
    assert reward.model is not model and reward.model is not tr.model
    assert not any(p.requires_grad for p in reward.model.parameters())
    assert tr.beta == tr.args.beta == kl_coefficient(0.5, 4) and tr.ref_model is not None
    assert tr.args.scale_rewards == "none" and tr.args.loss_type == "dr_grpo"
    batch = [{"prompt": first_turn(p, TASK), "problem_id": p.id} for p in TRAIN[:4] for _ in range(4)]
    out = tr._generate_and_score_completions(batch)
    rewards = list(tr._logs["rewards"]["self_reward"])
    assert len(rewards) == 16
    expected = []
    for i in range(16):
        prompt = out["prompt_ids"][i][out["prompt_mask"][i].bool()].tolist()
        comp = out["completion_ids"][i][out["completion_mask"][i].bool()].tolist()
        lp = forward_logprobs(model, prompt, comp)                 # the caller's model: the base itself
        expected.append(lp.gather(-1, torch.tensor(comp).unsqueeze(-1)).sum().item())
    assert rewards == pytest.approx(expected, abs=TOL)
    assert len(set(round(r, 3) for r in rewards)) > 4              # distinct samples, not one copied reward
    # scale_rewards="none": the advantage is the reward minus its group's mean, unscaled
    r = torch.tensor(expected).view(4, 4)
    assert out["advantages"].view(4, 4) == pytest.approx((r - r.mean(1, keepdim=True)), abs=10 * TOL)


def test_a_micro_batch_splits_a_step_into_accumulated_passes_of_the_same_rollouts(toy):
    """micro_batch=4 of 4 prompts x 4 rollouts: 4 passes of 4 rows, one optimizer step over the 16
    rollouts TRL generates at once (the same objective as one pass of 16); a non-divisor is refused."""
    model, tok = toy
    tr = rl_sharpen_trainer(model, tok, TASK, TRAIN, beta=1.0, steps=1, num_generations=4, prompts_per_step=4,
                            max_new_tokens=24, progress=False, micro_batch=4)
    assert tr.args.per_device_train_batch_size == 4 and tr.args.gradient_accumulation_steps == 4
    assert tr.args.generation_batch_size == 16 and tr.args.steps_per_generation == 4
    with pytest.raises(ValueError, match="micro_batch must be an int dividing"):
        rl_sharpen_trainer(model, tok, TASK, TRAIN, steps=1, num_generations=4, prompts_per_step=4, micro_batch=5)


def test_a_few_rl_steps_move_a_copy_and_leave_the_base_and_the_reward_alone(toy):
    model, tok = toy
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # 3 steps of 4 prompts x 4 samples at lr 1e-3: enough to move every tensor, ~3 s
    tuned, stats = rl_sharpen(model, tok, TASK, TRAIN, beta=1.0, steps=3, num_generations=4, prompts_per_step=4,
                              lr=1e-3, max_new_tokens=24, progress=False)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())      # the caller's model
    moved = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])]
    assert len(moved) >= len(before) // 2
    assert stats["steps"] == 3 and len(stats["log"]) == 3 and stats["predicted_gamma"] == 2.0
    assert (stats["log"]["reward"] < 0).all() and stats["log"]["kl"].iloc[-1] > 0      # log-probs; KL switched on
    assert tuned.sclab_spec.startswith("toy:arith+rl-sharpen[")
    assert "forward" not in tuned.__dict__                                             # TRL's patch undone
    # the tuned model generates on its own, and its samples differ from the base's somewhere
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=24, seed=0)
    convs = [first_turn(p, TASK) for p in TRAIN[:8]]
    a = Generator(model, tok, cache=False, progress=False).generate(convs, params)
    b = Generator(tuned, tok, cache=False, progress=False).generate(convs, params)
    assert [c.logprob for row in a for c in row] != pytest.approx([c.logprob for row in b for c in row], abs=TOL)


def test_after_training_reward_and_reference_are_still_the_base(toy):
    model, tok = toy
    tr = rl_sharpen_trainer(model, tok, TASK, TRAIN, beta=1.0, steps=3, num_generations=4, prompts_per_step=4,
                            lr=1e-3, max_new_tokens=24, progress=False)
    tr.train()
    base = model.state_dict()
    for frozen in (tr.sclab_reward.model, tr.ref_model):
        assert all(torch.equal(v, base[k]) for k, v in frozen.state_dict().items())
    tr.model.eval()
    batch = [{"prompt": first_turn(p, TASK), "problem_id": p.id} for p in TRAIN[4:8] for _ in range(4)]
    out = tr._generate_and_score_completions(batch)
    rewards = list(tr._logs["rewards"]["self_reward"])[-16:]
    far = 0
    for i in range(16):
        prompt = out["prompt_ids"][i][out["prompt_mask"][i].bool()].tolist()
        comp = out["completion_ids"][i][out["completion_mask"][i].bool()].tolist()
        idx = torch.tensor(comp).unsqueeze(-1)
        base_lp = forward_logprobs(model, prompt, comp).gather(-1, idx).sum().item()
        policy_lp = forward_logprobs(tr.model, prompt, comp).gather(-1, idx).sum().item()
        assert rewards[i] == pytest.approx(base_lp, abs=TOL)
        far += abs(policy_lp - base_lp) > 10 * TOL
    assert far >= 8    # the policy moved: a reward read from it would differ


def test_sft_on_a_pools_picks_trains_toward_them(toy, toy_generator):
    model, tok = toy
    pool = sample_pool(toy_generator, TASK, TRAIN, SamplingParams(n=4, temperature=1.0, max_new_tokens=24, seed=0))
    picks = sft_picks(pool, 4)
    ds = sft_dataset(picks, TASK, TRAIN, held_out=HELD)
    # 4 steps of 8 examples at lr 3e-3: a move the picks' log-likelihood shows, ~2 s
    tuned, stats = sft(model, tok, ds, max_steps=4, batch_size=8, lr=3e-3, progress=False)
    assert stats["steps"] == 4 and stats["examples"] == len(TRAIN)
    by_id = {p.id: p for p in TRAIN}
    convs = [first_turn(by_id[pid], TASK) for pid in picks["problem_id"]]
    before = Generator(model, tok, cache=False, progress=False).score(convs, list(picks["response"]))
    after = Generator(tuned, tok, cache=False, progress=False).score(convs, list(picks["response"]))
    assert sum(s.total for s in after) > sum(s.total for s in before)
    assert sum(s.total for s in before) == pytest.approx(picks["self_reward"].sum(), abs=10 * TOL)  # picks' reward


def test_single_sample_stats_equal_independent_computations(toy, toy_generator):
    model, tok = toy
    st = single_sample_stats(model, TASK, HELD, toy_generator, n=2, seed=1, max_new_tokens=24, n_boot=200)
    rec = st["records"]
    assert len(rec) == 16 and st["acc"] == pytest.approx(rec.groupby("problem_id")["correct"].mean().mean())
    assert st["acc_lo"] <= st["acc"] <= st["acc_hi"]
    assert st["base_loglik"] == pytest.approx(st["own_loglik"], abs=TOL)   # the model is the base here
    comps = toy_generator.generate([first_turn(p, TASK) for p in HELD], SamplingParams(n=2, temperature=1.0,
                                                                                       max_new_tokens=24, seed=1))
    ent, tokens = 0.0, 0
    for p, row in zip(HELD, comps):
        prompt = toy_generator.backend.encode(first_turn(p, TASK))
        for c in row:
            lp = forward_logprobs(model, prompt, c.token_ids)
            ent += -(lp.exp() * lp).sum().item()
            tokens += len(c.token_ids)
    assert st["entropy"] == pytest.approx(ent / tokens, rel=1e-3)


def test_line_marginals_read_the_result_position(toy):
    model, tok = toy
    probs = HELD[:3]
    lm = line_marginals(model, tok, TASK, probs, progress=False)
    values = tok.convert_tokens_to_ids([str(v) for v in range(13)])
    for p in probs:
        prompt = tok.apply_chat_template(first_turn(p, TASK), add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
        gold = tok(p.meta["solution"], add_special_tokens=False)["input_ids"]
        lp = forward_logprobs(model, prompt, gold)
        for line in range(2 * p.meta["n"]):
            assert tok.convert_ids_to_tokens(gold[5 * line + 2]) == "="             # the result follows "="
            v = lp[5 * line + 3, values].double()
            got = lm[(lm.problem_id == p.id) & (lm.line == line)].sort_values("value")
            assert got["logprob"].tolist() == pytest.approx((v - v.logsumexp(0)).tolist(), abs=TOL)
            assert got["gold"].sum() == 1 and int(got.loc[got["gold"], "value"].iloc[0]) == int(
                p.meta["solution"].split()[5 * line + 3])
    with pytest.raises(ValueError, match="meta\\['solution'\\]"):
        line_marginals(model, tok, TASK, [dataclasses.replace(probs[0], meta={})])
