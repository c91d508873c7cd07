"""The `vllm` backend (GPU machines): the same interface as `hf`, through vLLM's offline `LLM`.

Every row is its own request with its own seed (vLLM's per-request `seed`), so a sample is
fixed by (seed, messages, sample index) as with `hf`. Log-probabilities are vLLM's default
raw log-probs (before temperature), matching `hf`. vLLM is not batch-invariant even at
temperature 0 (REFERENCES: known traps): the manifest records the seed and flags; report CIs.

    >>> from sclab.generate import Generator
    >>> # g = Generator("Qwen/Qwen2.5-1.5B-Instruct", backend="vllm", gpu_memory_utilization=0.85)
"""
from __future__ import annotations

import hashlib
import time

from sclab.generate import Completion, SamplingParams

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
        self.llm = self.vllm.LLM(model=ref.source, **kwargs)
        self.lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("sclab-adapter", 1, adapter)

    def fingerprint(self) -> str:
        return hashlib.sha256(f"vllm|{self.spec}|{self.adapter}".encode()).hexdigest()[:16]

    def generate_rows(self, reqs, params: SamplingParams, progress: bool = True, desc: str = "generating"):
        sps = [to_vllm_params(self.vllm, params, seed) for _, seed in reqs]
        convs = [conv for conv, _ in reqs]
        out: list[Completion | None] = [None] * len(reqs)
        chat_idx = [j for j, c in enumerate(convs) if not isinstance(c, str)]
        raw_idx = [j for j, c in enumerate(convs) if isinstance(c, str)]
        for idx, call in ((chat_idx, self.llm.chat), (raw_idx, self.llm.generate)):
            if not idx:
                continue
            t0 = time.time()
            res = call([convs[j] for j in idx], sampling_params=[sps[j] for j in idx], use_tqdm=progress,
                       lora_request=self.lora)
            dt = (time.time() - t0) / len(idx)
            for j, r in zip(idx, res):
                out[j] = from_vllm_output(r, dt)
        return out
