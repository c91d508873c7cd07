"""SRGen: self-reflective generation at test time (Mu et al., arXiv 2510.02919).

At every decoding step t the model's next-token entropy H_t (nats, of softmax(logits / T)) is
compared with the entropies of the tokens generated before it. When

    H_t > max(mean(W) + k · max(std(W), min_std), min_threshold),   W = the last `window` of H_1..H_{t-1}

(only once at least `min_history` tokens were generated; std with ddof = 1, as torch.std), the model
*reflects* before it samples token t: a correction vector δ (zero-initialised, the hidden size) is
added to the final hidden state of every context position (after the last norm, before the LM head)
and optimised for `steps` AdamW steps (lr, weight decay 1e-8, eps 1e-5, as the reference code) on

    L(δ) = (1 − λ) · CE(context tokens | h + δ) + λ · H(softmax((W_head (h_t + δ)) / T))

CE is the mean next-token cross-entropy over the prompt and the tokens generated so far (`ce="all"`,
the reference code's choice: it uses input_ids[:, 1:]) or over the generated tokens only
(`ce="completion"`). Token t is then drawn from the corrected distribution, with the same uniform
that the uncorrected one would have read (`sclab.generate.hf.pick_tokens`), so every trigger comes
with a paired counterfactual (`plain_tokens`). δ serves that one token; the next step starts from
δ = 0 (the reference code applies δ_high to the reflective forward pass only). The KV cache is never
touched: δ sits after the last layer, so reflecting costs `steps` LM-head passes over the context,
no transformer pass.

Reference code (github.com/2020-qqtcg/SRGen, `tnot_decorator.py`): window N = 20..25, K = 2..4,
min_std 0.5 and min_threshold 1.8 nats, a static threshold of 3.0 before the window fills, at most
5 reflections a generation ("max_retries"), times = 3 steps, lr 0.01, λ = 0.05, T = 0.6. The floors
are scaled to 100k-token vocabularies; on the toy (55 tokens, ln 55 = 4.0 nats, a split fact ≈ 0.7)
they would never fire, so here they default to 0 and no token fires before `min_history` entropies
exist. One difference: the reference re-tokenises the text at each reflection and never reflects
on the first generated token; here the token ids are kept and every step can reflect.

With k = ∞ nothing fires and `srgen_generate` is the plain sampler of `sclab.generate` (same seeds,
same uniforms, same tokens). `srgen_records`, `srgen_steps`, `srgen_accuracy` and `trigger_stats`
read the toy world: which line position a trigger falls on, which table entry the line looks up,
whether the uncorrected token would have been wrong (precision, recall) and what SRGen fixed.

Measured on the toy (`toy:arith`, 200 held-out problems, T = 1, one sample each, plain 0.560,
greedy 0.815): with the reference's lr 0.01 / λ 0.05 a reflection moves δ by |δ| ≈ 0.34 against
|h| ≈ 15 and changes 1% of the triggered tokens (+1.0 points, CI [0, +2.5]); CE over the prompt,
which the model never learnt to predict, dominates the loss. With lr 0.1, λ 0.5 (k = 2, window 10):
0.675 (+11.5 [+6.5, +16.5]); problems whose gold path passes an unsure fact +17.8, a misconception
−4.5 (its rare right draws are sharpened to the wrong mode). Drawing the argmax at the same
triggers does as well (+10.5): on the toy SRGen is sharpening at uncertain tokens, and greedy
decoding everywhere stays far ahead.

    >>> trigger_positions([0.1, 0.2, 0.1, 0.2, 2.0, 0.1], k=2.0, window=4)   # 2.0 > 0.15 + 2·0.058
    [4]
    >>> # res = srgen_generate(model, tok, [first_turn(p, task) for p in problems], k=2.0, window=10)
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import pandas as pd

CE_CONTEXTS = ("all", "completion")
CORRECTIONS = ("vector", "argmax")   # SRGen's δ, or the control: the mode at the trigger
ROLES = ("input", "op", "=", "result", ";", ">", "final", "eos", "off-format")   # toy_next_token's


# ----------------------------------------------------------------------------- the trigger rule
def trigger_threshold(history: Sequence[float], k: float, window: int, min_history: int | None = None,
                      min_std: float = 0.0, min_threshold: float = 0.0) -> float:
    """The entropy the next token must exceed to fire, given the entropies of the tokens before it;
    inf while fewer than `min_history` (default `window`) exist, and for k = inf.

    >>> trigger_threshold([1.0, 3.0], k=1.0, window=2)            # mean 2 + 1·std 1.414
    3.414213562373095
    >>> trigger_threshold([1.0], k=1.0, window=2)
    inf
    """
    min_history = window if min_history is None else min_history
    if len(history) < min_history or math.isinf(k):
        return math.inf
    w = np.asarray(history[-window:], dtype=float)
    std = float(w.std(ddof=1)) if len(w) > 1 else 0.0
    return max(float(w.mean()) + k * max(std, min_std), min_threshold)


def trigger_positions(entropies: Sequence[float], k: float, window: int, min_history: int | None = None,
                      min_std: float = 0.0, min_threshold: float = 0.0, max_triggers: int | None = None) -> list[int]:
    """The steps where the rule fires on a sequence of next-token entropies (each step's threshold
    reads the uncorrected entropies of all earlier steps, fired or not), at most `max_triggers`."""
    _check_rule(k, window, min_history, min_std, min_threshold, max_triggers)
    out = []
    for t, h in enumerate(entropies):
        if max_triggers is not None and len(out) >= max_triggers:
            break
        if h > trigger_threshold(entropies[:t], k, window, min_history, min_std, min_threshold):
            out.append(t)
    return out


def _check_rule(k, window, min_history, min_std, min_threshold, max_triggers):
    if not isinstance(k, (int, float)) or math.isnan(k) or k < 0:
        raise ValueError(f"k must be a number >= 0 (math.inf: never reflect), got {k!r}")
    if not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an int >= 2 (a std needs two entropies), got {window!r}")
    if min_history is not None and (not isinstance(min_history, int) or not 2 <= min_history <= window):
        raise ValueError(f"min_history must be an int in 2..window={window} or None (= window), got {min_history!r}")
    for name, v in (("min_std", min_std), ("min_threshold", min_threshold)):
        if not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
            raise ValueError(f"{name} must be a number >= 0 (nats), got {v!r}")
    if max_triggers is not None and (not isinstance(max_triggers, int) or max_triggers < 0):
        raise ValueError(f"max_triggers must be an int >= 0 or None (no cap), got {max_triggers!r}")


# ----------------------------------------------------------------------------- generation
def _entropy(logits, temperature: float):
    import torch

    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def _reflect(head, ctx, labels, steps: int, lr: float, lam: float, temperature: float):
    """Optimise one δ per row (AdamW is elementwise, so a batch of rows is the same as one run
    each) on (1 − λ)·CE(labels | ctx + δ) + λ·H(last position). ctx (R, L, H) are the detached final
    hidden states, labels (R, L−1) the next tokens (−100: not counted). Returns the corrected logits
    of the last position and per row the loss at δ = 0 and at the final δ, and |δ|."""
    import torch

    # δ and the head in float32: a step of ~0.01 on a bf16 hidden state of norm ~10 would round away
    ctx = ctx.float()
    weight = head.weight.float()
    bias = None if getattr(head, "bias", None) is None else head.bias.float()
    delta = torch.zeros(ctx.shape[0], 1, ctx.shape[-1], dtype=torch.float32, device=ctx.device, requires_grad=True)
    opt = torch.optim.AdamW([delta], lr=lr, weight_decay=1e-8, eps=1e-5)
    valid = (labels != -100).float()

    def loss_of(d):
        logits = torch.nn.functional.linear(ctx + d, weight, bias)
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels.clamp(min=0), reduction="none")
        ce = (nll * valid).sum(-1) / valid.sum(-1).clamp(min=1)
        return (1 - lam) * ce + lam * _entropy(logits[:, -1], temperature), logits[:, -1]

    with torch.enable_grad():
        for s in range(steps):
            loss, _ = loss_of(delta)
            if s == 0:
                before = loss.detach()
            # autograd.grad, not backward: the model's own parameters must not collect gradients
            (delta.grad,) = torch.autograd.grad(loss.sum(), delta)
            opt.step()
    with torch.no_grad():
        after, last = loss_of(delta)
    if steps == 0:
        before = after
    return last, before, after, delta.detach().norm(dim=-1).squeeze(-1)


def srgen_generate(model, tokenizer, conversations: Sequence, *, k: float = 2.0, window: int = 10,
                   min_history: int | None = None, min_std: float = 0.0, min_threshold: float = 0.0,
                   max_triggers: int | None = 5, steps: int = 3, lr: float = 0.01, lam: float = 0.05,
                   ce: str = "all", correction: str = "vector", temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
                   n: int = 1, seed: int = 0, batch_size: int = 64, progress: bool = True) -> list[dict]:
    """SRGen samples of every conversation (`n` each, conversation-major), drawn with the uniforms
    `Generator.generate` draws for the same seed and sample index (`row_seed`, `row_uniforms`).

    Each dict: conversation, sample, text, token_ids, tokens, finish_reason, logprob and
    token_logprobs (the chosen tokens under the uncorrected model at T = 1, as `Completion`),
    time (s, the sample's share of its batch), and per step: entropies (H_t, uncorrected, at T),
    thresholds (inf: not armed), plain_tokens (the token the uncorrected distribution gives with
    the same uniform); triggers (the steps that reflected) and reflections (per trigger: step,
    entropy, entropy_after, loss_before, loss_after, delta_norm, token, plain_token).
    T = 0 is greedy decoding, with entropies at T = 1.

    correction="argmax" is a control, not SRGen: at the same triggers it takes the uncorrected
    distribution's most likely token and optimises nothing, which tells how much of a gain a
    sharper pick at uncertain tokens alone would give (the reflections then report δ = 0)."""
    import torch
    from transformers import DynamicCache

    from sclab.generate import encode_conversation, row_seed
    from sclab.generate.hf import eos_ids, pick_tokens, row_uniforms

    _check_rule(k, window, min_history, min_std, min_threshold, max_triggers)
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0 (AdamW steps on δ), got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not 0 <= lam <= 1:
        raise ValueError(f"lam must be in [0, 1] (the entropy term's weight), got {lam!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if ce not in CE_CONTEXTS:
        raise ValueError(f"ce must be one of {', '.join(CE_CONTEXTS)}, got {ce!r}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"temperature must be >= 0 and top_p in (0, 1], got {temperature!r}, {top_p!r}")
    for name, v in (("max_new_tokens", max_new_tokens), ("n", n), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if isinstance(conversations, (str, dict)) or not conversations:
        raise ValueError("conversations must be a non-empty list of conversations (each a list of messages or a str)")
    t_ent = temperature if temperature > 0 else 1.0
    eos = eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    rows = [(c, s) for c in range(len(conversations)) for s in range(n)]
    prompts = {c: encode_conversation(tokenizer, conversations[c]) for c in range(len(conversations))}
    order = sorted(range(len(rows)), key=lambda j: -len(prompts[rows[j][0]]))   # as the hf backend batches
    out: list[dict | None] = [None] * len(rows)
    device, head = model.device, model.get_output_embeddings()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(rows), desc="srgen", unit="sample")
    was_training = model.training
    model.eval()
    try:
        for b0 in range(0, len(order), batch_size):
            idx = order[b0:b0 + batch_size]
            B, width = len(idx), max(len(prompts[rows[j][0]]) for j in idx)
            ids = torch.full((B, width), pad, dtype=torch.long)
            mask = torch.zeros((B, width), dtype=torch.long)
            for r, j in enumerate(idx):   # left padding
                p = prompts[rows[j][0]]
                ids[r, width - len(p):], mask[r, width - len(p):] = torch.tensor(p), 1
            u = torch.stack([row_uniforms(row_seed(seed, conversations[rows[j][0]], rows[j][1]), max_new_tokens)
                             for j in idx])
            ctx_ids, ids, mask = ids.to(device), ids.to(device), mask.to(device)
            pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
            gen = [dict(token_ids=[], token_logprobs=[], entropies=[], thresholds=[], plain_tokens=[], triggers=[],
                        reflections=[]) for _ in idx]
            done = torch.zeros(B, dtype=torch.bool)
            t0 = time.time()
            with torch.no_grad():
                cache = DynamicCache(config=model.config)
                hs = [model.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                                  use_cache=True).last_hidden_state]
                for t in range(max_new_tokens):
                    logits = head(hs[-1][:, -1]).float()
                    ent = _entropy(logits, t_ent).cpu()
                    plain = pick_tokens(logits, u[:, t], temperature, top_p)
                    tok = plain.clone()
                    fire = []
                    for r in range(B):
                        if done[r]:
                            continue
                        g = gen[r]
                        thr = trigger_threshold(g["entropies"], k, window, min_history, min_std, min_threshold)
                        g["thresholds"].append(thr)
                        capped = max_triggers is not None and len(g["triggers"]) >= max_triggers
                        if not capped and float(ent[r]) > thr:
                            fire.append(r)
                    if fire:
                        ctx = torch.cat(hs, dim=1)[fire]
                        labels = ctx_ids[fire, 1:].clone()
                        keep = (mask[fire, 1:] == 1) & (mask[fire, :-1] == 1)
                        if ce == "completion":
                            keep[:, :width - 1] = False   # labels before position `width` are prompt tokens
                        labels[~keep] = -100
                        if correction == "argmax":   # the control: the mode at the trigger, no δ
                            last = logits[fire].float()
                            before = after = dnorm = torch.zeros(len(fire))
                            fixed = last.argmax(-1)
                        else:
                            last, before, after, dnorm = _reflect(head, ctx, labels, steps, lr, lam, t_ent)
                            fixed = pick_tokens(last, u[fire, t], temperature, top_p)
                        ent_after = _entropy(last, t_ent)
                        tok[fire] = fixed
                        for i, r in enumerate(fire):
                            gen[r]["triggers"].append(t)
                            gen[r]["reflections"].append(dict(
                                step=t, entropy=float(ent[r]), entropy_after=float(ent_after[i]),
                                loss_before=float(before[i]), loss_after=float(after[i]), delta_norm=float(dnorm[i]),
                                token=int(fixed[i]), plain_token=int(plain[fire[i]])))
                    logp = torch.log_softmax(logits, dim=-1).gather(-1, tok.unsqueeze(-1)).squeeze(-1).cpu()
                    for r in range(B):
                        if done[r]:
                            continue
                        g = gen[r]
                        g["token_ids"].append(int(tok[r]))
                        g["token_logprobs"].append(float(logp[r]))
                        g["entropies"].append(float(ent[r]))
                        g["plain_tokens"].append(int(plain[r]))
                    step_in = torch.where(done.to(device), torch.full_like(tok, pad), tok)
                    done |= torch.tensor([int(x) in eos for x in tok.tolist()])
                    if bool(done.all()) or t == max_new_tokens - 1:
                        break
                    ctx_ids = torch.cat([ctx_ids, step_in[:, None]], dim=1)
                    mask = torch.cat([mask, mask.new_ones((B, 1))], dim=1)
                    pos = pos[:, -1:] + 1
                    hs.append(model.model(input_ids=step_in[:, None], attention_mask=mask, position_ids=pos,
                                          past_key_values=cache, use_cache=True).last_hidden_state)
            dt = (time.time() - t0) / B
            for r, j in enumerate(idx):
                g = gen[r]
                toks = g["token_ids"]
                stopped = bool(toks) and toks[-1] in eos
                out[j] = dict(conversation=rows[j][0], sample=rows[j][1],
                              text=tokenizer.decode(toks, skip_special_tokens=True).strip(), tokens=len(toks),
                              finish_reason="stop" if stopped else "length", logprob=float(sum(g["token_logprobs"])),
                              time=dt, **g)
            if bar:
                bar.update(B)
    finally:
        model.train(was_training)
        if bar:
            bar.close()
    return out


def srgen_completion(result: dict):
    """A `srgen_generate` result as a `sclab.generate.Completion` (for `sclab.records.row`)."""
    from sclab.generate import Completion

    return Completion(text=result["text"], token_ids=list(result["token_ids"]), logprob=result["logprob"],
                      tokens=result["tokens"], time=result["time"], finish_reason=result["finish_reason"],
                      token_logprobs=list(result["token_logprobs"]))


# ----------------------------------------------------------------------------- reading it on the toy world
def srgen_records(task, problems: Sequence, results: Sequence[dict], method: str = "srgen") -> pd.DataFrame:
    """`srgen_generate` results on `[first_turn(p, task) for p in problems]` as records (turn 1,
    `strategy` = method, graded by `task.grade`, labelled by `task.label`), with `method`,
    `n_triggers` and the generation settings' result columns beside the task's label columns."""
    from sclab import records
    from sclab.records import COLUMNS

    _check_results(problems, results)
    rows = []
    for res in results:
        p = problems[res["conversation"]]
        comp = srgen_completion(res)
        r = records.row(p, res["sample"], 1, method, "intrinsic", comp, task.grade(p, comp.text), task=task)
        r.update(method=method, n_triggers=len(res["triggers"]))
        rows.append(r)
    return pd.DataFrame(rows, columns=COLUMNS + list(task.label_columns) + ["method", "n_triggers"])


def _check_results(problems, results):
    if not problems or not results:
        raise ValueError("srgen: no problems or no results given")
    if any(not isinstance(r, dict) or "conversation" not in r for r in results):
        raise ValueError("results must be what srgen_generate returns (dicts with a `conversation` index)")
    bad = max(r["conversation"] for r in results)
    if bad >= len(problems):
        raise ValueError(f"results refer to conversation {bad}, but only {len(problems)} problems were given "
                         f"(pass the problems the conversations were built from, in order)")


def toy_next_token(problem, prefix: Sequence[str], world) -> tuple[str, str | None, tuple | None]:
    """What the toy world's solution format writes next after the generated tokens `prefix`:
    (role, the right token given the prefix, (a, op, c) for a result token). Right means given
    the prefix's own values: a line's input is the previous line's written result, its result the
    true one of its written input and operation, the final answer the last written result (as
    `sclab.toy.labels` judges lines); at "eos" the expected token is the tokenizer's end of turn
    (None here). A prefix off the five-token line format gives ("off-format", None, None).

    >>> from sclab.tasks import Problem; from sclab.toy.registry import ToyWorld
    >>> q = Problem("q", "7 ; +3 -5 ; 1 ?", "5")
    >>> toy_next_token(q, "7 +3 = 9 ; 9".split(), ToyWorld())   # the chain goes on from the written 9
    ('op', '-5', None)
    >>> toy_next_token(q, "7 +3 = 9 ; 9 -5 =".split(), ToyWorld())
    ('result', '4', (9, '-', 5))
    """
    from sclab.toy.world import apply, parse_question

    prog = parse_question(problem.question)
    lines = 2 * prog.n
    slot_of = lambda j: (["input", "op", "=", "result", ";"][j % 5] if j < 5 * lines
                         else ROLES[5 + j - 5 * lines] if j < 5 * lines + 3 else "off-format")
    for j, t in enumerate(prefix):   # every written token must have its slot's form
        role = slot_of(j)
        ok = {"input": t.isdigit(), "result": t.isdigit(), "final": t.isdigit(), "=": t == "=", ";": t == ";",
              ">": t == ">", "op": len(t) > 1 and t[0] in world.ops and t[1:].isdigit()}.get(role, False)
        if not ok:
            return "off-format", None, None
    j = len(prefix)
    role = slot_of(j)
    line = j // 5
    if role == "input":
        return role, str(prog.x0) if line == 0 else prefix[5 * line - 2], None
    if role == "op":
        op, c = prog.ops[line % 2]
        return role, f"{op}{c}", None
    if role == "result":
        a, op, c = int(prefix[5 * line]), prefix[5 * line + 1][0], int(prefix[5 * line + 1][1:])
        return role, str(apply(op, a, c, world.p)), (a, op, c)
    if role == "final":
        return role, prefix[5 * lines - 2], None
    return role, (role if role in ("=", ";", ">") else None), None   # eos: the caller knows its token


def srgen_steps(task, problems: Sequence, results: Sequence[dict], tokenizer) -> pd.DataFrame:
    """One row per generated step of toy-world `srgen_generate` results: problem_id, sample, step,
    role (`toy_next_token`), entry_kind (for result tokens: the looked-up table entry's kind,
    "clean" / "unsure" / "misconception"), expected (the right token, None where undefined),
    token and plain_token (SRGen's and the uncorrected one under the same uniform), plain_wrong
    and srgen_wrong (None where undefined), plain_error (the kind of the uncorrected token's
    error: `sclab.toy.labels.line_kind` at a result, "structure" elsewhere, None if right),
    entropy, threshold, triggered, changed, entropy_after (NaN where it did not fire)."""
    from sclab.toy.labels import line_kind
    from sclab.toy.world import error_table

    _check_results(problems, results)
    world = task.world
    table = error_table(world)
    eos_tok = tokenizer.eos_token
    rows = []
    for res in results:
        p = problems[res["conversation"]]
        toks = tokenizer.convert_ids_to_tokens(res["token_ids"])
        plain = tokenizer.convert_ids_to_tokens(res["plain_tokens"])
        after = {f["step"]: f["entropy_after"] for f in res["reflections"]}
        for t, (tok, pl) in enumerate(zip(toks, plain)):
            role, expected, entry = toy_next_token(p, toks[:t], world)
            if role == "eos":
                expected = eos_tok
            kind = (table[entry][0] if entry in table else "clean") if entry else None
            wrong = lambda x: None if expected is None else x != expected
            err = None
            if wrong(pl):
                err = line_kind(*entry, int(pl), world) if entry and pl.isdigit() else "structure"
            rows.append(dict(problem_id=p.id, sample=res["sample"], step=t, role=role, entry_kind=kind,
                             expected=expected, token=tok, plain_token=pl, plain_wrong=wrong(pl),
                             srgen_wrong=wrong(tok), plain_error=err, entropy=res["entropies"][t],
                             threshold=res["thresholds"][t], triggered=t in after, changed=tok != pl,
                             entropy_after=after.get(t, math.nan)))
    return pd.DataFrame(rows)


def trigger_stats(steps: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Where the trigger fires and what it does, pooled and per group of `by` (columns of
    `srgen_steps`, e.g. "role", "entry_kind", "plain_error"): steps, triggers, trigger_rate;
    plain_wrong_rate (uncorrected token wrong); precision = P(uncorrected token wrong | fired),
    recall = P(fired | uncorrected token wrong); fixed = P(SRGen's token right | fired, uncorrected
    wrong), broken = P(SRGen's token wrong | fired, uncorrected right), changed = P(token differs
    from the uncorrected one | fired). Steps where the right token is undefined (off-format) count
    in steps and triggers only. Rates with no denominator are NaN.

    >>> s = pd.DataFrame({"triggered": [True, True, False, False], "plain_wrong": [True, False, True, False],
    ...                   "srgen_wrong": [False, False, True, False], "changed": [True, False, False, False]})
    >>> trigger_stats(s).loc["all", ["trigger_rate", "precision", "recall", "fixed", "broken"]].tolist()
    [0.5, 0.5, 0.5, 1.0, 0.0]
    """
    from sclab.metrics.correction import ratio

    need = {"triggered", "plain_wrong", "srgen_wrong", "changed"}
    if not isinstance(steps, pd.DataFrame) or not need <= set(steps.columns):
        raise ValueError(f"steps must be the table srgen_steps returns (columns {sorted(need)})")
    by = [by] if isinstance(by, str) else list(by or [])
    missing = [c for c in by if c not in steps.columns]
    if missing:
        raise ValueError(f"by: {missing} are not columns of steps; columns: {list(steps.columns)}")
    d = pd.DataFrame({"trig": steps["triggered"].astype(bool), "def": steps["plain_wrong"].notna(),
                      "pw": steps["plain_wrong"].fillna(False).astype(bool),
                      "sw": steps["srgen_wrong"].fillna(False).astype(bool), "ch": steps["changed"].astype(bool)})
    d = d.assign(steps=1, trig_def=d.trig & d["def"], tp=d.trig & d.pw, fix=d.trig & d.pw & ~d.sw,
                 pr=d.trig & d["def"] & ~d.pw, brk=d.trig & d["def"] & ~d.pw & d.sw, ch_t=d.trig & d.ch)
    cols = ["steps", "trig", "def", "pw", "trig_def", "tp", "fix", "pr", "brk", "ch_t"]
    groups = {"all": d[cols].sum()}
    if by:
        keys = steps[by].astype(object).where(steps[by].notna(), "-")
        for key, g in d[cols].groupby([keys[c] for c in by], sort=True):
            groups[key if len(by) > 1 else key[0]] = g.sum()
    c = pd.DataFrame(groups).T.astype(float)
    return pd.DataFrame({"steps": c.steps.astype(int), "triggers": c.trig.astype(int),
                         "trigger_rate": ratio(c.trig, c.steps), "plain_wrong_rate": ratio(c.pw, c["def"]),
                         "precision": ratio(c.tp, c.trig_def), "recall": ratio(c.tp, c.pw),
                         "fixed": ratio(c.fix, c.tp), "broken": ratio(c.brk, c.pr),
                         "changed": ratio(c.ch_t, c.trig)}, index=c.index)


def srgen_accuracy(plain: pd.DataFrame, srgen: pd.DataFrame, classes: pd.Series | dict | None = None, *,
                   n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Accuracy of the plain sampler and of SRGen on the same problems, samples and seeds, paired:
    acc_plain, acc_srgen, delta (= fixed − broken exactly), fixed (wrong plain, right SRGen, a
    fraction of all samples), broken, each with a problem-bootstrap interval (`metrics_with_ci`
    with the plain run as turn 1 and SRGen as turn 2), per class of `classes` (problem_id -> class,
    e.g. `problem_classes`) beside "all"."""
    from sclab.metrics.bootstrap import metrics_with_ci
    from sclab.records import KEY, validate

    for name, df in (("plain", plain), ("srgen", srgen)):
        validate(df, ["correct"], f"{name} records")
    both = pd.concat([plain.assign(turn=1), srgen.assign(turn=2)], ignore_index=True)[[*KEY, "correct"]]
    parts = {"all": both}
    if classes is not None:
        classes = pd.Series(classes)
        missing = pd.Index(both["problem_id"].unique()).difference(classes.index)
        if len(missing):
            raise ValueError(f"classes has no class for problem {missing[0]!r}")
        cls = classes.loc[both["problem_id"]].to_numpy()
        parts |= {k: both[cls == k] for k in sorted(set(cls), key=str)}
    names = {"acc_t1": "acc_plain", "acc_t2": "acc_srgen", "delta": "delta", "delta_i2c": "fixed",
             "delta_c2i": "broken"}
    rows = {}
    for name, df in parts.items():
        m = metrics_with_ci(df, n_boot=n_boot, alpha=alpha, seed=seed)
        rows[name] = {"n_problems": m["n_problems"], **{f"{v}{s}": m[f"{k}{s}"] for k, v in names.items()
                                                        for s in ("", "_lo", "_hi")}}
    return pd.DataFrame.from_dict(rows, orient="index")
