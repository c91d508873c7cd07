"""sclab.critique on the shipped toy model: attempts as token rows (the sampler's own tokens, step ends
on `;`, the final EOS); a P(IK) row that holds the question and no answer; SORM labels that never read
the gold lines and end on the attempt's own grade; local refinement that keeps the flagged prefix;
V^π and the step likelihoods against independent teacher-forced scores; the verdict words and P(True)
as the policy's own normalised probability of them; and value heads that never touch the policy."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from sclab.critique import (VerdictModel, attempt_rows, likelihood_steps, outcome_rows, pik_rows, predict, ptrue_rows, resume,
                            rollout_labels, step_rows, train_value, value_model, verdict_ids, verdict_model)
from sclab.generate import Generator, SamplingParams
from sclab.rollout import first_turn
from sclab.sharpening import sample_pool
from sclab.tasks import get_task
from sclab.toy.values import v_pi, v_star
from sclab.toy.world import apply, parse_lines, render

pytestmark = pytest.mark.smoke
TASK = get_task("arith")
PROBS = TASK.problems(6, seed=11)           # 6 problems x 2 samples; K = 4 rollouts per step: ~3 s a run
PARAMS = SamplingParams(n=2, max_new_tokens=72, seed=1)
K = 4
TOL = 1e-4                                  # float32 on CPU: batched, padded passes vs one another


@pytest.fixture(scope="module")
def gen(toy):
    model, tok = toy
    return Generator(model, tok, cache=False, progress=False)


@pytest.fixture(scope="module")
def pool(gen):
    return sample_pool(gen, TASK, PROBS, PARAMS)


@pytest.fixture(scope="module")
def attempts(gen, pool):
    return attempt_rows(gen, TASK, PROBS, pool)


@pytest.fixture(scope="module")
def labels(gen, pool, attempts):
    return rollout_labels(gen, TASK, PROBS, attempts, pool["correct"], k=K)


def ids_of(tok, words):
    return tok.convert_tokens_to_ids(words)


def first_turn_ids(tok, problem):
    """The toy chat template written out by hand: `<user> question <eos> <assistant>`."""
    return ids_of(tok, ["<user>"] + TASK.prompt(problem).split() + ["<eos>", "<assistant>"])


def by_id(pid):
    return next(p for p in PROBS if p.id == pid)


def test_attempt_rows_are_the_samplers_tokens(gen, pool, attempts):
    tok = gen.tokenizer
    semi, eos = ids_of(tok, ";"), tok.eos_token_id
    comps = gen.generate([first_turn(p, TASK) for p in PROBS], PARAMS)   # the pool's samples again (seeded)
    assert len(attempts) == len(pool) == 2 * len(PROBS)
    for a, (_, rec) in zip(attempts, pool.iterrows()):
        p = by_id(rec["problem_id"])
        assert (a.problem_id, a.sample) == (rec["problem_id"], rec["sample"])
        assert a.prompt == first_turn_ids(tok, p)
        assert a.ids == a.prompt + a.response
        assert tok.decode(a.response, skip_special_tokens=True).strip() == rec["response"]
        comp = comps[PROBS.index(p)][rec["sample"]]
        if comp.finish_reason == "stop":
            assert a.response == comp.token_ids      # re-tokenised text = what was sampled, EOS included
        assert a.final == len(a.ids) - 1 and a.ids[a.final] == eos
        assert a.steps == [len(a.prompt) + k for k, t in enumerate(a.response) if t == semi]
        assert all(a.ids[s] == semi for s in a.steps)
        lines = parse_lines(rec["response"])
        if lines:
            assert len(a.steps) == len(lines)          # one step end per solution line
    assert sum(len(a.steps) for a in attempts) > 40


def test_attempt_rows_reject_unknown_problems(gen, pool):
    with pytest.raises(ValueError, match="not among the problems"):
        attempt_rows(gen, TASK, PROBS[:2], pool)


def test_outcome_and_step_rows(attempts, labels, pool):
    orm = outcome_rows(attempts, pool["correct"].tolist())
    at_steps = outcome_rows(attempts, at_steps=True)
    sorm = step_rows(attempts, labels)
    for a, r, rs, s, ok in zip(attempts, orm, at_steps, sorm, pool["correct"]):
        assert r.ids == a.ids and r.positions == [a.final] and r.targets == [float(ok)]
        assert rs.positions == a.steps + [a.final] and rs.targets == []
        mine = labels[(labels["problem_id"] == a.problem_id) & (labels["sample"] == a.sample)].sort_values("step")
        assert s.positions == a.steps + [a.final] and s.targets == mine["label"].tolist()


def test_a_pik_row_never_sees_an_answer(gen, attempts):
    """The P(IK) row is the first turn alone, read at its last token: a prefix of every attempt at
    the problem and nothing after it; no solution token (`=`, `>`, a line end in the answer) in it."""
    tok = gen.tokenizer
    acc = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5]          # one empirical accuracy per problem
    rows = pik_rows(gen, TASK, PROBS, accuracy=acc)
    answer_ids = set(ids_of(tok, ["=", ">", "same", "revise", "redo"]))
    for p, r, t in zip(PROBS, rows, acc):
        assert r.ids == first_turn_ids(tok, p)
        assert r.positions == [len(r.ids) - 1] and r.targets == [t]
        assert not answer_ids & set(r.ids)
        assert r.ids.count(ids_of(tok, "<assistant>")) == 1 and r.ids[-1] == ids_of(tok, "<assistant>")
        for a in attempts:
            if a.problem_id == p.id:
                assert a.ids[:len(r.ids)] == r.ids and len(a.ids) > len(r.ids)
    assert pik_rows(gen, TASK, PROBS[:1])[0].targets == []


def test_rollout_labels_never_read_the_gold_lines(gen, pool, attempts, labels):
    """The same labels with every problem's reference solution replaced by a wrong one (gold kept:
    grading needs it); the last step is the attempt's own grade; label = any rollout right."""
    def broken(p):
        lines = parse_lines(p.meta["solution"])
        a, op, c, r = lines[0]
        return render([(a, op, c, (r + 1) % TASK.world.p)] + lines[1:])

    fake = [dataclasses.replace(p, meta={**p.meta, "solution": broken(p)}) for p in PROBS]
    assert all(f.gold == p.gold and f.meta["solution"] != p.meta["solution"] for f, p in zip(fake, PROBS))
    again = rollout_labels(gen, TASK, fake, attempts, pool["correct"], k=K)
    assert again.equals(labels)
    assert len(labels) == sum(len(a.steps) + 1 for a in attempts)
    assert set(labels["label"]) <= {0.0, 1.0} and labels["mc_value"].between(0, 1).all()
    assert ((labels["mc_value"] * K) % 1 == 0).all()
    assert (labels["label"] == (labels["mc_value"] > 0).astype(float)).all()
    for a, ok in zip(attempts, pool["correct"]):
        mine = labels[(labels["problem_id"] == a.problem_id) & (labels["sample"] == a.sample)]
        assert mine["step"].tolist() == list(range(len(a.steps) + 1))
        last = mine[mine["step"] == len(a.steps)].iloc[0]
        assert last["label"] == float(ok) and last["mc_value"] == float(ok)
    assert 0 < labels["label"].mean() < 1          # both labels occur


def test_rollout_labels_are_k_policy_rollouts_from_the_step(gen, attempts, labels):
    """Spot check: the mc_value of a step is the graded mean of K seeded samples from the attempt's
    tokens up to the step end, drawn here independently."""
    tok = gen.tokenizer
    params = SamplingParams(temperature=1.0, n=K, max_new_tokens=72, seed=0)
    for a in attempts[:4]:
        p = by_id(a.problem_id)
        for s in (0, len(a.steps) - 1):
            comps = gen.generate([a.ids[:a.steps[s] + 1]], params)[0]
            kept = a.ids[len(a.prompt):a.steps[s] + 1]
            hits = [TASK.grade(p, tok.decode(kept + c.token_ids, skip_special_tokens=True)).correct for c in comps]
            row = labels[(labels["problem_id"] == a.problem_id) & (labels["sample"] == a.sample)
                         & (labels["step"] == s)].iloc[0]
            assert row["mc_value"] == pytest.approx(np.mean(hits))


def test_resume_keeps_the_lines_before_the_flag(gen, pool, attempts):
    flags = [None, 0] + [min(j, len(a.steps)) for j, a in enumerate(attempts)][2:]
    params = SamplingParams(temperature=1.0, n=1, max_new_tokens=72, seed=2)
    texts = resume(gen, TASK, PROBS, attempts, flags, params)
    assert len(texts) == len(attempts)
    assert texts[0] == pool["response"].iloc[0]                              # no flag: the attempt stands
    fresh = gen.generate([attempts[1].prompt], params)[0][0].text.strip()    # flag 0: a fresh attempt
    assert texts[1] == fresh
    changed = 0
    for j, (a, f, text) in enumerate(zip(attempts, flags, texts)):
        if not f:
            continue
        words = pool["response"].iloc[j].split()
        cut = [k for k, w in enumerate(words) if w == ";"][f - 1] + 1      # through the f-th line's `;`
        assert text.split()[:cut] == words[:cut], (j, f)
        # the rest is the policy's seeded sample from exactly that prefix (the step-end token included)
        rest = gen.generate([a.ids[:a.steps[f - 1] + 1]], params)[0][0].text
        assert text == " ".join(words[:cut] + rest.split()), (j, f)
        changed += text != pool["response"].iloc[j]
    assert changed > 0
    with pytest.raises(ValueError, match="n=1"):
        resume(gen, TASK, PROBS, attempts, flags, SamplingParams(n=2))


def gold_attempts(gen, problems, texts=None):
    """Given texts (default: the gold solutions) as sample 0 of each problem, as attempts."""
    texts = texts or [p.meta["solution"] for p in problems]
    df = pd.DataFrame({"problem_id": [p.id for p in problems], "sample": 0, "response": texts})
    return attempt_rows(gen, TASK, problems, df)


def slipped(problem, k):
    """The gold solution with a propagated slip at line k (its later lines follow the wrong value)."""
    lines = parse_lines(problem.meta["solution"])
    a, op, c, r = lines[k]
    new = lines[:k] + [(a, op, c, (r + 1) % TASK.world.p)]
    for _, op2, c2, _ in lines[k + 1:]:
        new.append((new[-1][3], op2, c2, apply(op2, new[-1][3], c2, TASK.world.p)))
    return render(new)


def test_v_pi_of_the_gold_solution_is_its_own_tail_probability(gen):
    """On the gold solution, V^π after line j = exp(Σ log π of the gold tokens after line j's `;`),
    read here from one teacher-forced score of the whole gold response; at the end, the outcome (1).
    An attempt that slips at line k: the gold attempt's values before k (same prefix), 0 from k on."""
    probs = PROBS[:4]
    gold = gold_attempts(gen, probs)
    stars = [v_star(p, p.meta["solution"], TASK.world) for p in probs]
    vals = v_pi(gen, probs, gold, stars)
    whole = gen.score([first_turn(p, TASK) for p in probs], [p.meta["solution"] for p in probs])
    for a, sc, v in zip(gold, whole, vals):
        assert sc.token_ids == a.response
        lp = np.asarray(sc.token_logprobs)
        expect = [float(np.exp(lp[pos - len(a.prompt) + 1:].sum())) for pos in a.steps]
        assert v[:-1] == pytest.approx(expect, abs=TOL) and v[-1] == 1.0
        assert all(0 < x <= 1 for x in v[:-1])
        assert (np.diff(v[:-1]) >= -TOL).all()      # a later step leaves a sub-product of the same factors
    ks = [1, 2, 0, 3]
    texts = [slipped(p, k) for p, k in zip(probs, ks)]
    slips = gold_attempts(gen, probs, texts)
    vals2 = v_pi(gen, probs, slips, [v_star(p, t, TASK.world) for p, t in zip(probs, texts)])
    for k, v, vg in zip(ks, vals2, vals):
        assert v[:k] == pytest.approx(vg[:k], abs=TOL)
        assert v[k:] == [0.0] * (len(v) - k)         # from the wrong line on, and the wrong outcome


def test_likelihood_steps_add_up_to_the_whole_response(gen, attempts):
    """Each step's probability = exp(teacher-forced log-prob of its tokens after what precedes it),
    scored here step by step; Σ log(step) + the tail after the last `;` = the response's total."""
    steps = likelihood_steps(gen, attempts)
    whole = gen.score([a.prompt for a in attempts], [a.response for a in attempts])
    assert all(a.steps for a in attempts)
    convs, comps, where = [], [], []
    for i, a in enumerate(attempts):
        starts = [len(a.prompt)] + [s + 1 for s in a.steps[:-1]]
        for j, (s, e) in enumerate(zip(starts, a.steps)):
            convs.append(a.ids[:s])
            comps.append(a.ids[s:e + 1])
            where.append((i, j))
        convs.append(a.ids[:a.steps[-1] + 1])
        comps.append(a.ids[a.steps[-1] + 1:])
        where.append((i, "tail"))
    parts = gen.score(convs, comps)
    tail = {i: sc.total for (i, j), sc in zip(where, parts) if j == "tail"}
    for (i, j), sc in zip(where, parts):
        if j != "tail":
            assert steps[i][j] == pytest.approx(np.exp(sc.total), abs=TOL)
    for i, (a, st, w) in enumerate(zip(attempts, steps, whole)):
        assert len(st) == len(a.steps) and np.all((st > 0) & (st <= 1))
        assert np.log(st).sum() + tail[i] == pytest.approx(w.total, abs=TOL)


def test_verdict_ids_are_same_and_wrong(gen):
    tok = gen.tokenizer
    assert verdict_ids(tok, "toy") == (ids_of(tok, "same"), ids_of(tok, "wrong"))


def test_prompted_ptrue_is_the_policys_normalised_verdict(toy, gen, pool):
    """predict on a VerdictModel copy = p(same) / (p(same) + p(wrong)) for the next token after
    `confirm <q>`, from Generator.score on each verdict word."""
    model, tok = toy
    yes, no = verdict_ids(tok, "toy")
    probs = [by_id(pid) for pid in pool["problem_id"]]
    rows = ptrue_rows(tok, TASK, probs, pool["response"].tolist(), correct=pool["correct"].tolist())
    for r, ok in zip(rows, pool["correct"]):
        assert r.ids[-1] == ids_of(tok, "<assistant>") and r.positions == [len(r.ids) - 1] and r.targets == [float(ok)]
    got = np.concatenate(predict(verdict_model(model, yes, no), rows))
    ly = np.array([s.total for s in gen.score([r.ids for r in rows], [[yes]] * len(rows))])
    ln = np.array([s.total for s in gen.score([r.ids for r in rows], [[no]] * len(rows))])
    np.testing.assert_allclose(got, np.exp(ly) / (np.exp(ly) + np.exp(ln)), atol=TOL)


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_value_heads_copy_or_replace_the_policy_and_never_touch_it(toy, attempts, pool):
    model, tok = toy
    before = state(model)
    vm_self = value_model(model, init="self")
    vm_rand = value_model(model, init="random", seed=0)
    decoder = state(model.get_decoder())
    assert same_weights(state(vm_self.backbone), decoder)                 # a copy of the policy's decoder
    assert state(vm_rand.backbone).keys() == decoder.keys()               # the same architecture...
    assert not any(torch.equal(v, decoder[k]) for k, v in state(vm_rand.backbone).items() if v.ndim == 2)  # ...fresh
    assert same_weights(state(value_model(model, init="random", seed=0).backbone), state(vm_rand.backbone))  # seeded
    with pytest.raises(ValueError, match="init"):
        value_model(model, init="policy")
    rows = outcome_rows(attempts, pool["correct"].tolist())
    yes, no = verdict_ids(tok, "toy")
    vd = verdict_model(model, yes, no)
    prows = ptrue_rows(tok, TASK, [by_id(pid) for pid in pool["problem_id"]], pool["response"].tolist(),
                       correct=pool["correct"].tolist())
    for vm, rr in ((vm_self, rows), (vm_rand, rows), (vd, prows)):
        start = state(vm)
        losses = train_value(vm, rr, steps=3, lr=1e-3, batch_size=4, pad_id=tok.pad_token_id, progress=False)
        assert len(losses) == 3 and np.isfinite(losses).all()
        assert not same_weights(state(vm), start)                         # the copy trained...
    assert same_weights(state(model), before)                             # ...the policy did not move
    out = predict(vm_self, rows, pad_id=tok.pad_token_id)
    assert all(len(o) == 1 and 0 < o[0] < 1 for o in out)


@pytest.mark.parametrize("lora", [False, True])
def test_verdict_reads_two_head_rows_as_the_full_logits_would(lora):
    """The verdict is computed from the decoder's hidden states and two rows of the output layer (the
    full-vocabulary logits at every position do not fit on a 150k-token model); it must equal the LM's own
    logit difference (its forward pass, final norm and all), with a biased head and LoRA adapters that are
    not the identity, and with Gemma-style soft-capped logits capped one by one before the difference."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False))
    lm.lm_head.bias = torch.nn.Parameter(torch.randn(50))       # a head with a bias (some architectures have one)
    lm.eval()
    vd = verdict_model(lm, 7, 9, lora=lora)
    assert vd.training == vd.lm.training and not VerdictModel(lm, 7, 9).training and not lm.training  # modes kept
    if lora:   # PEFT starts B at zero (the adapters a no-op): give them weight so that skipping them would show
        with torch.no_grad():
            for name, p in vd.lm.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
    ids = torch.randint(0, 50, (3, 6))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        full = vd.lm(input_ids=ids, attention_mask=mask).logits.double()   # the LM's own forward pass
        got = vd(ids, mask)
        assert got.dtype == torch.float32 and got.shape == (3, 6)
        torch.testing.assert_close(got, (full[..., 7] - full[..., 9]).float(), atol=1e-5, rtol=1e-5)
        if lora:
            # the adapters count: the LM they were added to (verdict_model adapts a copy) reads otherwise
            assert not torch.allclose(got, VerdictModel(lm, 7, 9)(ids, mask), atol=1e-3)
        cap = 3.0
        vd.lm.config.final_logit_softcapping = cap              # Llama's forward does not cap: read the cap as Gemma does
        capped = cap * torch.tanh(full / cap)
        torch.testing.assert_close(vd(ids, mask), (capped[..., 7] - capped[..., 9]).float(), atol=1e-5, rtol=1e-5)
