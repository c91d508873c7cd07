"""sclab.sharpening on the shipped toy model: self-reward is the teacher-forced T = 1 log-prob (not the
tempered sampler's), the pool is shared across n, coverage is a product of token probabilities, and
best-of-N's picks never move when the grades or the gold do."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from sclab.generate import SamplingParams
from sclab.rollout import first_turn
from sclab.sharpening import curves, gold_logprobs, greedy_pool, picks, sample_pool
from sclab.tasks import get_task

pytestmark = pytest.mark.smoke
TASK = get_task("arith")
PROBS = TASK.problems(48, seed=11)          # 48 problems x 8 samples: ~10 s of generation on one core
TEMP = 0.7                                  # a tempered sampler: its log-probs are not the self-reward
PARAMS = SamplingParams(n=8, temperature=TEMP, max_new_tokens=64, seed=3)
TOL = 1e-4                                  # float32 on CPU: KV-cached decode vs one forward pass


@pytest.fixture(scope="module")
def pool(toy_generator):
    return sample_pool(toy_generator, TASK, PROBS, PARAMS)


def forward_logprobs(model, prompt, completion, temperature=1.0):
    """Independent reference: one unpadded forward pass, log softmax(logits / T) at each completion token."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float()
    logp = torch.log_softmax(logits / temperature, -1)
    return logp.gather(-1, torch.tensor(completion).unsqueeze(-1)).squeeze(-1).tolist(), logp


def test_self_reward_is_the_t1_sequence_logprob_not_the_tempered_one(pool, toy, toy_generator):
    model, _ = toy
    assert len(pool) == len(PROBS) * 8 and (pool["temperature"] == TEMP).all()
    comps = toy_generator.generate([first_turn(p, TASK) for p in PROBS[:6]], PARAMS)  # cached: the pool's samples
    far = 0
    for p, row in zip(PROBS[:6], comps):
        prompt = toy_generator.backend.encode(first_turn(p, TASK))
        for s, comp in enumerate(row):
            rec = pool[(pool["problem_id"] == p.id) & (pool["sample"] == s)].iloc[0]
            assert rec["response"] == comp.text and rec["reward_tokens"] == len(comp.token_ids)
            t1, _ = forward_logprobs(model, prompt, comp.token_ids)
            tempered, _ = forward_logprobs(model, prompt, comp.token_ids, temperature=TEMP)
            assert rec["self_reward"] == pytest.approx(sum(t1), abs=TOL)               # summed, at T = 1
            assert rec["self_reward_mean"] == pytest.approx(sum(t1) / len(t1), abs=TOL)  # the ablation
            far += abs(sum(tempered) - rec["self_reward"]) > 10 * TOL
    assert far >= 24   # of 48: where the tempered log-prob differs, the reward is not it


def test_a_smaller_pool_is_the_start_of_a_larger_one(pool, toy_generator):
    small = sample_pool(toy_generator, TASK, PROBS[:10], dataclasses.replace(PARAMS, n=4))
    big = pool[pool["problem_id"].isin([p.id for p in PROBS[:10]]) & (pool["sample"] < 4)]
    cols = ["problem_id", "sample", "response", "correct", "self_reward"]
    assert small[cols].reset_index(drop=True).equals(big[cols].reset_index(drop=True))


def test_greedy_pool_follows_the_argmax(toy, toy_generator):
    model, _ = toy
    g = greedy_pool(toy_generator, TASK, PROBS[:8], max_new_tokens=64)
    assert len(g) == 8 and (g["temperature"] == 0).all() and g["error_kind"].isin([None, "slip", "unsure",
                                                                                 "misconception", "structure"]).all()
    comps = toy_generator.generate([first_turn(p, TASK) for p in PROBS[:8]], SamplingParams(temperature=0.0,
                                                                                           max_new_tokens=64))
    for p, (c,) in zip(PROBS[:8], comps):
        lp, full = forward_logprobs(model, toy_generator.backend.encode(first_turn(p, TASK)), c.token_ids)
        assert lp == pytest.approx(full.max(-1).values.tolist(), abs=TOL)   # every token the most likely one
        assert g.loc[g["problem_id"] == p.id, "self_reward"].item() == pytest.approx(sum(lp), abs=TOL)


def test_coverage_is_the_product_of_the_gold_tokens_probabilities(toy, toy_generator):
    model, tok = toy
    cov = gold_logprobs(toy_generator, TASK, PROBS[:12])
    for p, (_, r) in zip(PROBS[:12], cov.iterrows()):
        gold = tok(p.meta["solution"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert r["tokens"] == len(gold)
        _, logp = forward_logprobs(model, toy_generator.backend.encode(first_turn(p, TASK)), gold)
        probs = logp.exp()[torch.arange(len(gold)), torch.tensor(gold)].double().tolist()
        assert r["logprob"] == pytest.approx(math.log(math.prod(probs)), abs=TOL)
        assert r["min_token_logprob"] == pytest.approx(math.log(min(probs)), abs=TOL)
    with pytest.raises(ValueError, match="no meta\\['solution'\\]"):
        gold_logprobs(toy_generator, TASK, [dataclasses.replace(PROBS[0], meta={})])


def test_picks_do_not_move_with_the_grades_or_the_gold(pool):
    # regrade every sample against a wrong gold: `correct` changes, the selection must not
    wrong_gold = {p.id: dataclasses.replace(p, gold=str((int(p.gold) + 1) % TASK.world.p)) for p in PROBS}
    regraded = pool.copy()
    regraded["correct"] = [TASK.grade(wrong_gold[pid], text).correct for pid, text in zip(pool["problem_id"],
                                                                                             pool["response"])]
    assert (regraded["correct"] != pool["correct"]).mean() > 0.3
    shuffled = pool.assign(correct=np.random.default_rng(0).permutation(pool["correct"].to_numpy()))
    for N in (1, 2, 4, 8):
        base = picks(pool, N)
        assert base.tolist() == picks(regraded, N).tolist() == picks(shuffled, N).tolist()


def test_curves_on_the_toy_pool(pool, toy_generator):
    greedy = greedy_pool(toy_generator, TASK, PROBS, max_new_tokens=64)
    c = curves(pool, greedy, n_boot=200).set_index(["method", "generations"])
    assert sorted(set(c.index.get_level_values(1))) == [1, 2, 4, 8]
    mean = pool.groupby("problem_id")["correct"].mean().mean()
    assert c.loc[("T=1 mean", 1), "acc"] == pytest.approx(mean)
    assert c.loc[("best-of-N", 1), "acc"] == pytest.approx(mean)          # one sample: nothing to select
    for N in (1, 2, 4, 8):   # the oracle bound: no grade-blind pick of N samples beats pass@N
        assert c.loc[("pass@k", N), "acc"] >= c.loc[("best-of-N", N), "acc"] - 1e-12
    assert c.loc[("best-of-N", 8), "tokens"] == pytest.approx(8 * pool.groupby("problem_id")["tokens"].mean().mean())
