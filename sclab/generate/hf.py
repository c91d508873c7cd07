"""The `hf` backend: batched `transformers` generation (left padding, KV cache, length-sorted
batches) on CPU or GPU, with per-row random numbers.

Why a logits processor does the sampling (glue, ~30 lines): `generate(do_sample=True)` draws
from one global RNG, so a sample would depend on which rows shared its batch. Here each row
gets its own uniforms from its own seed; the processor applies temperature and top-p, picks
the token by inverse-CDF and hands HF a one-hot score that greedy decoding follows. It also
records the chosen token's log-probability at temperature 1.

Scoring (`score_rows`) is one teacher-forced forward pass per batch over prompt + completion,
left-padded with the position ids generation uses (count of real tokens before each), reading
only the last positions' logits (`logits_to_keep`): the log-softmax at temperature 1 of the
logits that predict each completion token.

    >>> from sclab.generate import Generator, SamplingParams
    >>> Generator("toy:arith-tiny", cache=False, progress=False).backend.batch_size
    64
"""
from __future__ import annotations

import time

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from sclab.generate import Completion, SamplingParams, Scored, encode_conversation


def row_uniforms(seed: int, steps: int) -> torch.Tensor:
    """The uniforms one row draws its tokens with, one per step: a function of its seed only."""
    return torch.rand(steps, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()


def pick_tokens(scores: torch.Tensor, u: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The token each row draws from softmax(scores / T) (top-p truncated) by inverse CDF at its
    uniform `u` (batch,); the argmax at T = 0. Shared by `RowSampler` and `sclab.sharpening.srgen`,
    so that a corrected and an uncorrected distribution at one step read the same draw."""
    scores = scores.float()
    if temperature == 0:
        return scores.argmax(dim=-1)
    probs = torch.softmax(scores / temperature, dim=-1)
    if top_p < 1.0:
        sp, si = probs.sort(dim=-1, descending=True)
        keep = (sp.cumsum(-1) - sp) < top_p  # smallest set with mass >= top_p
        probs = torch.zeros_like(probs).scatter_(-1, si, sp * keep)
    cdf = probs.cumsum(dim=-1)
    v = u.to(cdf.device).unsqueeze(-1) * cdf[:, -1:]
    return torch.searchsorted(cdf, v).squeeze(-1).clamp_(max=scores.shape[-1] - 1)


class RowSampler(LogitsProcessor):
    def __init__(self, uniforms: torch.Tensor, temperature: float, top_p: float):
        self.u = uniforms  # (batch, max_new_tokens) in [0, 1)
        self.temperature, self.top_p = temperature, top_p
        self.step = 0
        self.chosen_logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        logp = torch.log_softmax(scores, dim=-1)
        tok = pick_tokens(scores, self.u[:, self.step], self.temperature, self.top_p)
        self.chosen_logprobs.append(logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1))
        self.step += 1
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, tok.unsqueeze(-1), 0.0)
        return out


class DelimiterStop(StoppingCriteria):
    """Ends each row once the tokens it generated (from position `start` on) hold `need`
    delimiters; `counts[t]` is how many a token's text holds. Stateless: it recounts the row."""

    def __init__(self, counts: torch.Tensor, need: int, start: int):
        self.counts, self.need, self.start = counts, need, start

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return self.counts.to(input_ids.device)[input_ids[:, self.start:]].sum(-1) >= self.need


def eos_ids(model, tokenizer) -> list[int]:
    """The tokens that end a turn: the generation config's EOS ids, plus the tokenizer's EOS."""
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    return eos


class HFBackend:
    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_ids = eos_ids(model, tokenizer)

    def fingerprint(self) -> str:
        from sclab.models import fingerprint

        return fingerprint(self.model)

    def encode(self, conversation) -> list[int]:
        return encode_conversation(self.tokenizer, conversation)

    @torch.no_grad()
    def generate_rows(self, reqs, params: SamplingParams, progress: bool = True, desc: str = "generating",
                      delimiters: tuple[torch.Tensor, int] | None = None, share: int = 1):
        """One Completion per (conversation, seed).

        `delimiters` = (counts, k) also ends a row on the token that brings its delimiters to k
        (`counts[token id]`: how many that token's text holds; `sclab.sharpening.search` ends a
        step after k solution lines); it ends "stop", like EOS. `share` = m says the requests come
        in runs of m with one conversation (m samples of one prefix): each run's prompt is
        prefilled once and its KV cache repeated m times, the samples unchanged."""
        if not isinstance(share, int) or share < 1 or len(reqs) % share:
            raise ValueError(f"generate_rows(share=...) must be an int >= 1 dividing the {len(reqs)} requests, "
                             f"got {share!r}")
        prompts = [self.encode(conv) for conv, _ in reqs]
        if any(prompts[j] != prompts[j - j % share] for j in range(len(reqs))):
            raise ValueError(f"generate_rows(share={share}): each run of {share} requests must share one conversation")
        runs = sorted(range(len(reqs) // share), key=lambda g: -len(prompts[g * share]))  # length-sorted batches
        order = [g * share + k for g in runs for k in range(share)]
        out: list[Completion | None] = [None] * len(reqs)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(reqs), desc=desc, unit="sample")
        pad = self.tokenizer.pad_token_id
        device = self.model.device
        step = max(1, self.batch_size // share) * share
        for b0 in range(0, len(order), step):
            idx = order[b0:b0 + step]
            width = max(len(prompts[j]) for j in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, j in enumerate(idx):  # left padding
                ids[r, width - len(prompts[j]):] = torch.tensor(prompts[j])
                mask[r, width - len(prompts[j]):] = 1
            t0 = time.time()
            cache = None
            if share > 1 and min(len(prompts[j]) for j in idx) > 1:  # prefill all but the last token once per run
                pos = (mask[::share, :-1].cumsum(-1) - 1).clamp_(min=0)
                cache = self.model(input_ids=ids[::share, :-1].to(device), attention_mask=mask[::share, :-1].to(device),
                                   position_ids=pos.to(device), use_cache=True, logits_to_keep=1).past_key_values
                cache.batch_repeat_interleave(share)
            u = torch.stack([row_uniforms(reqs[j][1], params.max_new_tokens) for j in idx])
            sampler = RowSampler(u, params.temperature, params.top_p)
            cfg = GenerationConfig(do_sample=False, max_new_tokens=params.max_new_tokens,
                                   eos_token_id=self.eos_ids, pad_token_id=pad)
            stopping = StoppingCriteriaList([DelimiterStop(delimiters[0], delimiters[1], width)] if delimiters else [])
            seqs = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                       generation_config=cfg, logits_processor=LogitsProcessorList([sampler]),
                                       stopping_criteria=stopping, past_key_values=cache)
            dt = (time.time() - t0) / len(idx)
            new = seqs[:, width:].cpu()
            lps = torch.stack(sampler.chosen_logprobs, dim=1).cpu() if sampler.chosen_logprobs else None
            for r, j in enumerate(idx):
                toks = new[r].tolist()
                end = next((k for k, t in enumerate(toks) if t in self.eos_ids), None)
                if delimiters:  # rows end on their k-th delimiter (the tokens after it are padding)
                    hit = (delimiters[0][torch.tensor(toks, dtype=torch.long)].cumsum(0) >= delimiters[1]).nonzero()
                    if len(hit) and (end is None or int(hit[0]) < end):
                        end = int(hit[0])
                n_tok = len(toks) if end is None else end + 1
                toks = toks[:n_tok]
                tlp = lps[r, :n_tok].tolist() if lps is not None else []
                text = self.tokenizer.decode(toks, skip_special_tokens=True)
                out[j] = Completion(text=text.strip(), token_ids=toks, logprob=float(sum(tlp)), tokens=n_tok,
                                    time=dt, finish_reason="length" if end is None else "stop",
                                    token_logprobs=tlp)
            if bar:
                bar.update(len(idx))
        if bar:
            bar.close()
        return out

    @torch.no_grad()
    def score_rows(self, rows: list[tuple[list[int], list[int]]], batch_size: int | None = None,
                   progress: bool = True, desc: str = "scoring") -> list[Scored]:
        """For each (prompt ids, completion ids): the completion tokens' log-probs at temperature 1."""
        bs = batch_size or self.batch_size
        order = sorted(range(len(rows)), key=lambda j: -(len(rows[j][0]) + len(rows[j][1])))
        out: list[Scored | None] = [None] * len(rows)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(rows), desc=desc, unit="row")
        pad, device = self.tokenizer.pad_token_id, self.model.device
        was_training = self.model.training
        self.model.eval()  # no dropout: a score is a function of the weights and the tokens
        try:
            for b0 in range(0, len(order), bs):
                idx = order[b0:b0 + bs]
                seqs = [rows[j][0] + rows[j][1] for j in idx]
                width = max(len(s) for s in seqs)
                keep = max(len(rows[j][1]) for j in idx)  # completion positions read, the longest row's
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, seq in enumerate(seqs):  # left padding, as in generation
                    ids[r, width - len(seq):] = torch.tensor(seq)
                    mask[r, width - len(seq):] = 1
                pos = (mask.cumsum(-1) - 1).clamp_(min=0)  # generation's position ids under left padding
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                    position_ids=pos.to(device), logits_to_keep=keep + 1).logits
                # logits[:, t] predicts the token at position width - keep + t; row r's m completion
                # tokens sit at the last m positions, so their logits are logits[r, keep - m : keep]
                for r, j in enumerate(idx):
                    comp = rows[j][1]
                    m = len(comp)
                    if m == 0:
                        out[j] = Scored(token_ids=[], token_logprobs=[], total=0.0)
                        continue
                    lp = torch.log_softmax(logits[r, keep - m:keep].float(), dim=-1)
                    tlp = lp.gather(-1, torch.tensor(comp, device=lp.device).unsqueeze(-1)).squeeze(-1).cpu()
                    out[j] = Scored(token_ids=list(comp), token_logprobs=tlp.tolist(), total=float(tlp.double().sum()))
                del logits
                if bar:
                    bar.update(len(idx))
        finally:
            self.model.train(was_training)
            if bar:
                bar.close()
        return out
