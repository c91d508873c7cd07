"""Generation: conversations in, sampled completions out, through one interface and one cache.

`Generator(model, backend="hf"|"vllm").generate(conversations, SamplingParams(...))` returns,
for every conversation, `n` Completions carrying the text, token ids, the summed
log-probability under the model (temperature 1, before any sampling transform: the quantity
that self-reward / sharpening needs, arXiv 2412.01951), tokens used and time.

Every sample is a function of (model weights, messages, sampling params, seed, sample index):
each row draws its own random numbers, so batching, ordering and the cache never change a
sample.

`Generator.score(conversations, completions)` is the other direction: the teacher-forced
log-probability of given completions (sampled ones, gold solutions, " (A)") under the model at
temperature 1, token by token: self-reward for sharpening, P(True), verifiers.

    >>> from sclab.generate import Generator, SamplingParams
    >>> g = Generator("toy:arith-tiny", cache=False, progress=False)
    >>> conv = [{"role": "user", "content": "3 ; + 1 * 2 ; 2 ?"}]
    >>> samples = g.generate([conv], SamplingParams(n=2, max_new_tokens=8))[0]
    >>> len(samples)
    2
    >>> s = g.score([conv], [samples[0]])[0]   # the sampler's own tokens, rescored
    >>> abs(s.total - samples[0].logprob) < 1e-4
    True
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
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


@dataclass
class Scored:
    """The teacher-forced log-probabilities of one completion under the model at temperature 1.

    `total` = Σ token_logprobs = log π(completion | conversation): the sequence log-probability
    that self-reward uses (summed, arXiv 2412.01951). `mean` is the length-normalised variant,
    for labelled ablations only."""

    token_ids: list[int]
    token_logprobs: list[float]
    total: float

    @property
    def tokens(self) -> int:
        return len(self.token_ids)

    @property
    def mean(self) -> float:
        return self.total / len(self.token_ids) if self.token_ids else 0.0


def encode_conversation(tokenizer, conversation: Conversation) -> list[int]:
    """The prompt tokens generation conditions on: a chat rendered with the chat template and
    the generation prompt, a str as raw text (no special tokens), a list of ints as it is."""
    if isinstance(conversation, (list, tuple)) and conversation and isinstance(conversation[0], numbers.Integral):
        return list(conversation)  # already token ids (multi-turn RL rollouts build their own contexts)
    if isinstance(conversation, str):
        return tokenizer(conversation, add_special_tokens=False)["input_ids"]
    enc = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(enc["input_ids"])


def text_completion_ids(tokenizer, conversation: Conversation, prompt_ids: list[int], text: str,
                        end_ids: list[int], eos: bool = True) -> list[int]:
    """The tokens a sampler emits to write `text` after `conversation`, ending with the end-of-turn
    token if `eos`: for a chat, what the chat template renders as the assistant's message, up to
    its first end-of-turn token; for a raw prompt (or a template that re-renders earlier turns),
    the text's own tokens. Re-tokenised text can differ from the tokens a sampler chose (BPE has
    several spellings of one string): to score a sample exactly, pass its Completion."""
    if not (isinstance(conversation, str) or (conversation and isinstance(conversation[0], numbers.Integral))):
        enc = tokenizer.apply_chat_template(list(conversation) + [{"role": "assistant", "content": text}],
                                            tokenize=True, return_dict=True)
        full = list(enc["input_ids"])
        tail = full[len(prompt_ids):]
        end = next((k for k, t in enumerate(tail) if t in end_ids), None)
        if full[:len(prompt_ids)] == prompt_ids and end is not None:
            return tail[:end + 1] if eos else tail[:end]
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids + end_ids[:1] if eos else ids


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

    def score(self, conversations: list[Conversation], completions: list, *, batch_size: int | None = None,
              eos: bool = True, desc: str = "scoring") -> list[Scored]:
        """Teacher-forced log-probabilities of `completions[i]` after `conversations[i]`.

        Temperature 1 and no top-p: the model's raw distribution, the quantity self-reward,
        P(True) and verifiers need. A log-prob under a sampling temperature is another number
        (log softmax(logits / T)) and must never stand in for it. sclab's samplers record the
        temperature-1 log-prob of what they drew, so for a Completion `score(...).total` equals
        `Completion.logprob` up to float error whatever temperature sampled it.

        The conversation is tokenised as generation does (`encode_conversation`), the
        completion's tokens appended:
          - a Completion: its `token_ids`, exactly what the sampler drew and `Completion.logprob`
            sums over (the EOS included where it stopped on it; with a stop string, the tokens
            past the cut too: the text is cut, the tokens are not);
          - a list of token ids: as given;
          - a str: as the chat template writes it as the assistant's message, with the
            end-of-turn token (`eos=False`: without, e.g. to score " (A)" as a continuation).
        hf batches rows with left padding (`batch_size`, default the generator's); a row's score
        does not depend on its batch. Scores are cached beside the samples."""
        if isinstance(conversations, (str, dict)) or (conversations and isinstance(conversations[0], dict)):
            raise TypeError("score() takes a list of conversations (each a list of messages, a str or token ids)")
        if isinstance(completions, (str, Completion)) or len(completions) != len(conversations):
            raise ValueError(f"score(): completions must be a list with one completion per conversation "
                             f"({len(conversations)}), got {type(completions).__name__} of length {len(completions)}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"score(batch_size=...) must be an int >= 1 or None, got {batch_size!r}")
        rows = []
        for i, (conv, comp) in enumerate(zip(conversations, completions)):
            prompt = self.backend.encode(conv)
            if not prompt:
                raise ValueError(f"score(): conversation {i} encodes to no tokens: its first token has no context")
            if isinstance(comp, Completion):
                ids = list(comp.token_ids)
            elif isinstance(comp, str):
                ids = text_completion_ids(self.backend.tokenizer, conv, prompt, comp, self.backend.eos_ids, eos)
            elif isinstance(comp, (list, tuple)) and all(isinstance(t, int) for t in comp):
                ids = list(comp)
            else:
                raise TypeError(f"score(): completion {i} is a {type(comp).__name__}; expected a Completion, "
                                f"a str or a list of token ids")
            rows.append((prompt, ids))
        fp = self.backend.fingerprint()
        keys = [{"model": fp, "score": [p, c]} for p, c in rows]
        results: list[Scored | None] = [None] * len(rows)
        if self.cache is not None:
            for j, hit in enumerate(self.cache.get_many(keys)):
                if hit is not None:
                    results[j] = Scored(**hit)
        todo = [j for j, r in enumerate(results) if r is None]
        if todo:
            new = self.backend.score_rows([rows[j] for j in todo], batch_size=batch_size, progress=self.progress,
                                          desc=desc)
            for j, sc in zip(todo, new):
                results[j] = sc
            if self.cache is not None:
                self.cache.put_many([(keys[j], dataclasses.asdict(results[j])) for j in todo])
        return results

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
