"""SRGen on the shipped toy model: never reflecting is the plain sampler token for token; entropies,
losses and paired counterfactual tokens equal an independent forward pass; a reflection lowers its
loss; the trigger fires where the rule says; the step table agrees with the world's labels."""
import math

import pandas as pd
import pytest
import torch

from sclab.generate import SamplingParams, encode_conversation, row_seed
from sclab.generate.hf import pick_tokens, row_uniforms
from sclab.rollout import first_turn
from sclab.sharpening import (srgen_accuracy, srgen_generate, srgen_records, srgen_steps, trigger_positions,
                              trigger_stats)
from sclab.tasks import get_task

pytestmark = pytest.mark.smoke
TASK = get_task("arith")
PROBS = TASK.problems(24, seed=7)           # 24 problems x 2 samples, <= 64 tokens: ~1 s a run on one core
CONVS = [first_turn(p, TASK) for p in PROBS]
RULE = dict(k=2.0, window=10, max_triggers=5)
REFLECT = dict(steps=3, lr=0.1, lam=0.5)    # a setting that changes tokens on the toy (lr 0.01 rarely does)
TOL = 1e-4                                  # float32 on CPU: KV-cached decode vs one forward pass


@pytest.fixture(scope="module")
def runs(toy):
    model, tok = toy
    common = dict(n=2, max_new_tokens=64, seed=5, progress=False)
    return {"plain": srgen_generate(model, tok, CONVS, k=math.inf, **common),
            "srgen": srgen_generate(model, tok, CONVS, **RULE, **REFLECT, **common)}


def test_never_reflecting_is_the_plain_sampler_token_for_token(runs, toy_generator):
    comps = toy_generator.generate(CONVS, SamplingParams(n=2, max_new_tokens=64, seed=5))
    for res in runs["plain"]:
        comp = comps[res["conversation"]][res["sample"]]
        assert res["token_ids"] == comp.token_ids and res["text"] == comp.text
        assert res["logprob"] == pytest.approx(comp.logprob, abs=TOL) and res["finish_reason"] == comp.finish_reason
        assert res["triggers"] == [] and res["plain_tokens"] == res["token_ids"]
        assert all(t == math.inf for t in res["thresholds"])


def independent_pass(model, tok, res, temperature=1.0):
    """One unpadded forward pass over prompt + generated tokens: each step's logits and final hidden state."""
    prompt = encode_conversation(tok, CONVS[res["conversation"]])
    ids = torch.tensor([prompt + res["token_ids"]])
    with torch.no_grad():
        h = model.model(input_ids=ids).last_hidden_state[0]
        logits = model.lm_head(h).float()
    steps = slice(len(prompt) - 1, len(prompt) - 1 + len(res["token_ids"]))
    return prompt, ids[0], h, logits, logits[steps]


def test_entropies_and_counterfactuals_equal_an_independent_pass(runs, toy):
    model, tok = toy
    checked = 0
    for res in runs["srgen"][:16]:
        prompt, _, _, _, logits = independent_pass(model, tok, res)
        logp = torch.log_softmax(logits, -1)
        assert res["entropies"] == pytest.approx((-(logp.exp() * logp).sum(-1)).tolist(), abs=TOL)
        assert res["token_logprobs"] == pytest.approx(
            logp.gather(-1, torch.tensor(res["token_ids"])[:, None]).squeeze(-1).tolist(), abs=TOL)
        # the uncorrected token of every step reads this row's own uniform (Generator's seeds)
        u = row_uniforms(row_seed(5, CONVS[res["conversation"]], res["sample"]), 64)[:len(res["token_ids"])]
        assert pick_tokens(logits, u, 1.0, 1.0).tolist() == res["plain_tokens"]
        untriggered = [t for t in range(len(res["token_ids"])) if t not in res["triggers"]]
        assert all(res["token_ids"][t] == res["plain_tokens"][t] for t in untriggered)
        checked += len(res["triggers"])
    assert checked >= 10      # the check covered steps that reflected


def test_the_trigger_fires_where_the_rule_says(runs):
    fired = 0
    for res in runs["srgen"]:
        assert res["triggers"] == trigger_positions(res["entropies"], **RULE)
        assert [f["step"] for f in res["reflections"]] == res["triggers"]
        for f in res["reflections"]:
            assert f["entropy"] > res["thresholds"][f["step"]] and f["plain_token"] == res["plain_tokens"][f["step"]]
        fired += len(res["triggers"])
    assert fired >= 40


def test_a_reflection_lowers_its_loss_computed_independently(runs, toy):
    model, tok = toy
    lam, checked = REFLECT["lam"], 0
    for res in runs["srgen"][:6]:
        prompt, ids, h, logits_all, _ = independent_pass(model, tok, res)
        for f in res["reflections"]:
            L = len(prompt) + f["step"]             # the context that predicts token `step`
            ce = torch.nn.functional.cross_entropy(logits_all[:L - 1], ids[1:L])   # prompt + generated (ce="all")
            logp = torch.log_softmax(logits_all[L - 1], -1)
            ent = float(-(logp.exp() * logp).sum())
            assert f["loss_before"] == pytest.approx((1 - lam) * float(ce) + lam * ent, abs=TOL)
            assert f["entropy"] == pytest.approx(ent, abs=TOL)
            assert f["loss_after"] < f["loss_before"] and f["entropy_after"] < f["entropy"]
            checked += 1
    assert checked >= 5
    changed = sum(f["token"] != f["plain_token"] for r in runs["srgen"] for f in r["reflections"])
    assert changed >= 1       # the correction moved some token off the uncorrected draw


def test_steps_agree_with_the_world_labels(runs, toy):
    _, tok = toy
    plain = srgen_records(TASK, PROBS, runs["plain"], "plain")
    steps = srgen_steps(TASK, PROBS, runs["plain"], tok)
    assert len(steps) == plain["tokens"].sum() and not steps["triggered"].any()
    assert (steps["plain_wrong"].fillna(False) == steps["srgen_wrong"].fillna(False)).all()  # one run, one token
    res = steps[steps["role"] == "result"].copy()
    res["line"] = res["step"] // 5
    kinds = []
    for (pid, s), g in res.groupby(["problem_id", "sample"]):
        rec = plain[(plain["problem_id"] == pid) & (plain["sample"] == s)].iloc[0]
        wrong = g[g["plain_wrong"] == True]   # noqa: E712 (a column of True/False/None)
        if rec["error_kind"] in ("slip", "unsure", "misconception"):
            assert wrong["line"].iloc[0] == rec["first_wrong"] and wrong["plain_error"].iloc[0] == rec["error_kind"]
            kinds.append(rec["error_kind"])
        elif pd.isna(rec["error_kind"]):
            assert wrong.empty
    assert len(kinds) >= 5 and len(set(kinds)) >= 2, kinds   # several wrong attempts, of more than one kind
    srgen = srgen_records(TASK, PROBS, runs["srgen"])
    acc = srgen_accuracy(plain, srgen, n_boot=100).loc["all"]
    assert acc["acc_plain"] == pytest.approx(plain["correct"].mean())
    assert acc["delta"] == pytest.approx(acc["fixed"] - acc["broken"])
    st = trigger_stats(srgen_steps(TASK, PROBS, runs["srgen"], tok), by="role").loc["all"]
    assert st["triggers"] == sum(len(r["triggers"]) for r in runs["srgen"])


def test_the_argmax_control_takes_the_mode_at_each_trigger_and_the_plain_token_elsewhere(toy):
    """correction="argmax": at a trigger, the uncorrected model's most likely token (an independent
    unpadded forward pass over the prefix), elsewhere the plain sampler's token; nothing optimised."""
    model, tok = toy
    res = srgen_generate(model, tok, CONVS[:12], k=0.5, window=4, max_triggers=None, correction="argmax",
                         max_new_tokens=64, seed=5, progress=False)
    fired = 0
    for r in res:
        prompt = encode_conversation(tok, CONVS[r["conversation"]])
        with torch.no_grad():
            logits = model(torch.tensor([prompt + r["token_ids"]])).logits[0, len(prompt) - 1:-1]
        for t, token in enumerate(r["token_ids"]):
            if t in r["triggers"]:
                fired += 1
                assert token == int(logits[t].argmax())
            else:
                assert token == r["plain_tokens"][t]
        assert all(f["delta_norm"] == 0.0 for f in r["reflections"])
    assert fired >= 12   # the rule fired often enough to test something


def test_an_unknown_correction_is_refused(toy):
    model, tok = toy
    with pytest.raises(ValueError, match="correction must be one of vector, argmax"):
        srgen_generate(model, tok, CONVS[:1], correction="mode", progress=False)
