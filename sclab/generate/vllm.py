"""The `vllm` backend (GPU machines): the same interface as `hf`, through vLLM's offline `LLM`.

Every row is its own request with its own seed (vLLM's per-request `seed`), so a sample is
fixed by (seed, messages, sample index) as with `hf`. Log-probabilities are vLLM's default
raw log-probs (before temperature), matching `hf`. vLLM is not batch-invariant even at
temperature 0 (REFERENCES: known traps): the manifest records the seed and flags; report CIs.

Scoring uses vLLM's prompt log-probs: prompt + completion go in as one token-id prompt with
`SamplingParams(max_tokens=1, prompt_logprobs=1)`, and `RequestOutput.prompt_logprobs[i]` (a
dict {token id: Logprob} per prompt position, None at position 0; the position's own token
always among the keys) gives log π(token i | tokens < i) for the completion's positions. Those
are raw log-probs (vLLM's default `logprobs_mode`). The chat is rendered with the tokenizer's
chat template, as `LLM.chat` does. With prefix caching on, vLLM has been seen to return prompt
log-probs that depend on request order (vllm-project/vllm#42019): for exact scores build the
Generator with `enable_prefix_caching=False`.

    >>> from sclab.generate import Generator
    >>> # g = Generator("Qwen/Qwen2.5-1.5B-Instruct", backend="vllm", gpu_memory_utilization=0.85)
"""
from __future__ import annotations

import functools
import hashlib
import numbers
import time

from sclab.generate import Completion, SamplingParams, Scored, encode_conversation

INSTALL_HINT = ("backend='vllm' needs vLLM on a CUDA machine: pip install -e '.[vllm]' "
                "(vllm==0.31.0, built for torch 2.13.0); on a CPU use backend='hf'")


def import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return vllm


def to_vllm_params(vllm, params: SamplingParams, seed: int):
    """Our SamplingParams for one row -> vllm.SamplingParams (n=1: one request per sample)."""
    return vllm.SamplingParams(n=1, temperature=params.temperature, top_p=params.top_p,
                               max_tokens=params.max_new_tokens, seed=seed % (2 ** 31),
                               stop=list(params.stop) or None, logprobs=0)


def from_vllm_output(out, dt: float) -> Completion:
    """One vLLM RequestOutput -> Completion."""
    o = out.outputs[0]
    lps = []
    for step in (o.logprobs or []):  # one dict {token_id: Logprob} per generated token
        lps.append(float(next(iter(step.values())).logprob) if step else 0.0)
    logprob = o.cumulative_logprob if o.cumulative_logprob is not None else sum(lps)
    reason = "length" if o.finish_reason == "length" else "stop"
    return Completion(text=o.text.strip(), token_ids=list(o.token_ids), logprob=float(logprob),
                      tokens=len(o.token_ids), time=dt, finish_reason=reason, token_logprobs=lps)


def to_score_params(vllm):
    """One scoring request: no sampling to speak of (one token, discarded), the prompt's log-probs
    at temperature 1 (1 = the top token besides the prompt's own; 0 would do, 1 is safe on every vLLM)."""
    return vllm.SamplingParams(n=1, temperature=1.0, max_tokens=1, prompt_logprobs=1, detokenize=False)


def from_prompt_logprobs(out, n_prompt: int, completion: list[int]) -> Scored:
    """The completion's log-probs from one RequestOutput whose prompt was prompt + completion."""
    pl = out.prompt_logprobs
    if pl is None or len(pl) < n_prompt + len(completion):
        raise RuntimeError(f"vLLM returned {'no' if pl is None else len(pl)} prompt log-probs for a prompt of "
                           f"{n_prompt + len(completion)} tokens (was prompt_logprobs dropped?)")
    lps = []
    for k, tok in enumerate(completion):
        pos = pl[n_prompt + k]  # a dict, or FlatLogprobs' per-position dict: {token id: Logprob}
        if not pos or tok not in pos:
            raise RuntimeError(f"vLLM's prompt log-probs at position {n_prompt + k} lack the token {tok}")
        lps.append(float(pos[tok].logprob))
    return Scored(token_ids=list(completion), token_logprobs=lps, total=float(sum(lps)))


class VLLMBackend:
    def __init__(self, spec: str, adapter: str | None = None, seed: int = 0, **llm_kwargs):
        from sclab.models import resolve

        ref = resolve(spec)  # clear errors for a missing path / toy models build once
        self.vllm = import_vllm()
        self.spec, self.adapter = spec, adapter
        kwargs = {"seed": seed, **llm_kwargs}
        if adapter:
            kwargs.setdefault("enable_lora", True)
            kwargs.setdefault("max_lora_rank", 64)
        self.source = ref.source
        self.llm = self.vllm.LLM(model=ref.source, **kwargs)
        self.lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("sclab-adapter", 1, adapter)

    def fingerprint(self) -> str:
        return hashlib.sha256(f"vllm|{self.spec}|{self.adapter}".encode()).hexdigest()[:16]

    @property
    def tokenizer(self):
        return self.llm.get_tokenizer()

    @functools.cached_property
    def eos_ids(self) -> list[int]:
        """End-of-turn tokens: the model's generation config's EOS ids, then the tokenizer's (as vLLM stops)."""
        try:
            from transformers import GenerationConfig

            eos = GenerationConfig.from_pretrained(self.source).eos_token_id
        except (OSError, ValueError):  # no generation_config.json
            eos = None
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        tok = self.tokenizer.eos_token_id
        return eos + ([tok] if tok is not None and tok not in eos else [])

    def encode(self, conversation) -> list[int]:
        return encode_conversation(self.tokenizer, conversation)

    def score_rows(self, rows: list[tuple[list[int], list[int]]], batch_size: int | None = None,
                   progress: bool = True, desc: str = "scoring") -> list[Scored]:
        """For each (prompt ids, completion ids): the completion tokens' log-probs (vLLM batches itself)."""
        out: list[Scored | None] = [None] * len(rows)
        idx = [j for j, (_, c) in enumerate(rows) if c]
        for j, (_, c) in enumerate(rows):
            if not c:
                out[j] = Scored(token_ids=[], token_logprobs=[], total=0.0)
        if idx:
            res = self.llm.generate([{"prompt_token_ids": list(rows[j][0]) + list(rows[j][1])} for j in idx],
                                    sampling_params=to_score_params(self.vllm), use_tqdm=progress,
                                    lora_request=self.lora)
            for j, r in zip(idx, res):
                out[j] = from_prompt_logprobs(r, len(rows[j][0]), rows[j][1])
        return out

    def generate_rows(self, reqs, params: SamplingParams, progress: bool = True, desc: str = "generating"):
        """One Completion per (conversation, seed): a chat goes to `LLM.chat` (vLLM renders it with the
        chat template), a str and a list of token ids (multi-turn contexts sclab builds itself:
        rollouts, step resumption) to `LLM.generate`, the ids as `{"prompt_token_ids": ...}`."""
        sps = [to_vllm_params(self.vllm, params, seed) for _, seed in reqs]
        out: list[Completion | None] = [None] * len(reqs)
        groups: dict[str, list[int]] = {"chat": [], "generate": []}
        prompts = []
        for j, (conv, _) in enumerate(reqs):
            if isinstance(conv, str):
                groups["generate"].append(j)
                prompts.append(conv)
            elif isinstance(conv, (list, tuple)) and conv and isinstance(conv[0], numbers.Integral):
                groups["generate"].append(j)
                prompts.append({"prompt_token_ids": [int(t) for t in conv]})
            else:
                groups["chat"].append(j)
                prompts.append(list(conv))
        for kind, idx in groups.items():
            if not idx:
                continue
            t0 = time.time()
            res = getattr(self.llm, kind)([prompts[j] for j in idx], sampling_params=[sps[j] for j in idx],
                                          use_tqdm=progress, lora_request=self.lora)
            dt = (time.time() - t0) / len(idx)
            for j, r in zip(idx, res):
                out[j] = from_vllm_output(r, dt)
        return out
