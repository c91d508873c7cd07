"""Generation: conversations in, sampled completions out, through one interface and one cache.

`Generator(model, backend="hf"|"vllm").generate(conversations, SamplingParams(...))` returns,
for every conversation, `n` Completions carrying the text, token ids, the summed
log-probability under the model (temperature 1, before any sampling transform: the quantity
that self-reward / sharpening needs, arXiv 2412.01951), tokens used and time.

Every sample is a function of (model weights, messages, sampling params, seed, sample index):
each row draws its own random numbers, so batching, ordering and the cache never change a
sample.

    >>> from sclab.generate import Generator, SamplingParams
    >>> g = Generator("toy:arith-tiny", cache=False, progress=False)
    >>> len(g.generate([[{"role": "user", "content": "3 ; + 1 * 2 ; 2 ?"}]], SamplingParams(n=2, max_new_tokens=8))[0])
    2
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from sclab.generate.cache import GenerationCache

Message = dict  # {"role": ..., "content": ...}
Conversation = Union[list[Message], str]  # a str is a raw prompt (no chat template)

BACKENDS = ("hf", "vllm")


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0        # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    n: int = 1                      # samples per conversation
    seed: int = 0
    stop: tuple[str, ...] = ()      # text is cut at the first stop string (not included)

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1 or self.n < 1:
            raise ValueError(f"SamplingParams.max_new_tokens and n must be >= 1, got {self.max_new_tokens}, {self.n}")
        object.__setattr__(self, "stop", tuple(self.stop))

    def key(self) -> dict:
        """What determines one sample (n does not: sample i is the same whatever n is)."""
        d = dataclasses.asdict(self)
        d.pop("n")
        return d


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    logprob: float                  # Σ log π(token) at temperature 1, over generated tokens (incl. EOS)
    tokens: int                     # generated tokens, EOS included
    time: float                     # seconds: this sample's share of its batch's wall time
    finish_reason: str              # "stop" (EOS or stop string) or "length" (hit max_new_tokens)
    token_logprobs: list[float] = field(default_factory=list)
    cached: bool = False

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("cached")
        return d


def row_seed(seed: int, conversation: Conversation, sample: int) -> int:
    """The seed of one sample: independent of batch, order and n."""
    blob = json.dumps([seed, conversation, sample], sort_keys=True)
    return int(hashlib.sha256(blob.encode()).hexdigest()[:15], 16)


def apply_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def default_cache_path() -> Path:
    from sclab.paths import cache_root

    return cache_root() / "generations.sqlite"


class Generator:
    """Samples completions of conversations with a chosen backend and an on-disk cache.

    model: a loaded `transformers` model (hf), or a spec string (`toy:<name>`, a path, a hub id).
    cache: True (the default file under SCLAB_CACHE_DIR), False, or a path."""

    def __init__(self, model, tokenizer=None, *, backend: str = "hf", batch_size: int = 64,
                 cache: bool | str | Path = True, progress: bool = True, adapter: str | None = None,
                 **backend_kwargs):
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        self.backend_name = backend
        self.progress = progress
        if backend == "hf":
            from sclab.generate.hf import HFBackend

            if isinstance(model, str):
                from sclab.models import load

                model, tokenizer = load(model, adapter=adapter)
            elif tokenizer is None:
                raise ValueError("Generator(model, tokenizer): pass the tokenizer with a loaded model")
            self.backend = HFBackend(model, tokenizer, batch_size=batch_size, **backend_kwargs)
        else:
            from sclab.generate.vllm import VLLMBackend

            if not isinstance(model, (str, Path)):
                raise ValueError("backend='vllm' takes a model spec (hub id or path), not a loaded model")
            self.backend = VLLMBackend(str(model), adapter=adapter, **backend_kwargs)
        self.cache = None
        if cache:
            self.cache = GenerationCache(default_cache_path() if cache is True else cache)

    @property
    def model(self):
        return getattr(self.backend, "model", None)

    @property
    def tokenizer(self):
        return getattr(self.backend, "tokenizer", None)

    def generate(self, conversations: list[Conversation], params: SamplingParams = SamplingParams(),
                 desc: str = "generating", sample_ids: list[int] | None = None) -> list[list[Completion]]:
        """For each conversation, `params.n` completions (sample i is fixed by the seed and i).

        `sample_ids` (with n=1) gives each conversation its own sample index: episodes use it so
        that two samples whose histories happen to coincide still draw independent next turns."""
        if isinstance(conversations, (str, dict)) or (conversations and isinstance(conversations[0], dict)):
            raise TypeError("generate() takes a list of conversations (each a list of messages or a str)")
        if sample_ids is not None:
            if params.n != 1 or len(sample_ids) != len(conversations):
                raise ValueError("generate(sample_ids=...) needs params.n == 1 and one id per conversation")
            rows = [(c, int(s)) for c, s in enumerate(sample_ids)]
        else:
            rows = [(c, i) for c in range(len(conversations)) for i in range(params.n)]
        fp = self.backend.fingerprint()
        keys = [{"model": fp, "messages": conversations[c], "params": params.key(), "sample": i} for c, i in rows]
        results: list[Completion | None] = [None] * len(rows)
        if self.cache is not None:
            for j, hit in enumerate(self.cache.get_many(keys)):
                if hit is not None:
                    results[j] = Completion(**hit, cached=True)
        todo = [j for j, r in enumerate(results) if r is None]
        if todo:
            reqs = [(conversations[rows[j][0]], row_seed(params.seed, conversations[rows[j][0]], rows[j][1]))
                    for j in todo]
            new = self.backend.generate_rows(reqs, params, progress=self.progress, desc=desc)
            for j, comp in zip(todo, new):
                comp.text, hit_stop = apply_stop(comp.text, params.stop)
                if hit_stop:
                    comp.finish_reason = "stop"
                results[j] = comp
            if self.cache is not None:
                self.cache.put_many([(keys[j], results[j].to_dict()) for j in todo])
        out: list[list[Completion]] = [[] for _ in conversations]
        for (c, _), comp in zip(rows, results):
            out[c].append(comp)
        return out
