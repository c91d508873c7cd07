"""The toy world's named models and their recipes (torch-free, so parameter checks stay fast).

A toy model is fully described by a `ToySpec`: the world it is pretrained on (`ToyWorld`:
the task, the slip rate ε and the priors that the papers attribute to pretraining) plus the
model size and the training budget. `load("toy:<name>")` builds the spec once and caches it.

    >>> from sclab.toy.registry import TOY_MODELS
    >>> TOY_MODELS["arith"].world.slip_rate
    0.05
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

# bump when the world or the trainer changes in a way that changes the weights
RECIPE_VERSION = 7


@dataclass(frozen=True)
class ToyWorld:
    """The synthetic task and the pretraining mix.

    Task: the *iterated program* `x0 ; op1 c1 op2 c2 ; n ?`, solved line by line as
    `a op c = r ;` (op1 then op2, n times, mod p), final answer after `>`.
    """

    p: int = 13                      # arithmetic modulus (numbers are single tokens 0..p-1)
    ops: tuple[str, ...] = ("+", "-")  # two ops, as prototyped: with "*" too, its table was still half-learned after 5 CPU minutes
    n_min: int = 1                   # program repetitions in pretraining (2n solution lines)
    n_max: int = 6
    test_fraction: float = 0.1       # programs held out of pretraining (hash partition)
    # Correctable errors: a fraction of pretraining solution lines carry a wrong result that
    # later lines follow ("Physics of Language Models 2.2", arXiv 2408.16293), so sampled
    # first attempts contain slips that a second look can find.
    slip_rate: float = 0.05
    # Follow-up turns in pretraining. A neutral base: after "again" a retry keeps the previous
    # answer or is an independent attempt with the same slip rate, never a fix, so the base
    # model's intrinsic Δ ≈ 0 with balanced i→c and c→i. Keeping is a restatement without
    # working, `same > r`: a verbatim copy of a slipped solution was not learned in 5 CPU
    # minutes (the arithmetic overrode the copy at the slip, an implicit fix: Δ +0.06).
    followup_rate: float = 0.8       # fraction of documents with at least one follow-up
    max_attempts: int = 4            # attempts per pretraining document (multi-round episodes)
    # P(keep the answer) after each retry word; otherwise an independent attempt. The words differ only in
    # this prior, which is what lets prompt variants shift the CL-CS trade-off (arXiv 2412.19513):
    # "confirm" (a confident prompt) copies more, "check" (a critical prompt) re-solves more.
    copy_rates: tuple[tuple[str, float], ...] = (("again", 0.5), ("confirm", 0.8), ("check", 0.2))
    # After "wrong" (oracle feedback, only ever after a wrong attempt) the next attempt is an
    # independent one: the oracle-retry fix rate measures how many errors a fresh attempt fixes.
    # The doubt prior (Huang et al. arXiv 2310.01798; sycophancy): after "sure ?" pretraining
    # text restates its answer flipped to another value with this probability, else keeps it:
    # a change under pressure, which lands on the right answer only by chance. (A subtler
    # version - a slipped rewrite - was not learned in 5 CPU minutes: "sure ?" then behaved
    # exactly like "again".)
    doubt_change_rate: float = 0.4
    followup_weights: tuple[tuple[str, float], ...] = (("again", 0.35), ("confirm", 0.12), ("check", 0.12),
                                                       ("sure", 0.16), ("wrong", 0.25))
    # Multiple choice: this fraction of documents lists 4 options (the answer + 3 distractors)
    # before the question; the solution is worked as usual and the final answer is the computed
    # result if it is an option, else a guess among the options.
    mc_rate: float = 0.15


@dataclass(frozen=True)
class ToySpec:
    """A toy model: its world, architecture (a small LlamaForCausalLM, RoPE) and training budget."""

    world: ToyWorld = field(default_factory=ToyWorld)
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_position: int = 1024
    # Two phases. 1) Single attempts only, until the tables are learned: every 25 steps the
    # result tokens of 64 held-out clean solutions are checked (teacher forced) and the phase
    # ends once they reach `table_accuracy` (a seed-dependent ~200-600 steps; at most
    # `max_single_steps`). 2) `mixed_steps` on the full mix, where copying and the follow-up
    # words - and so the neutral base - are learned. Without phase 1, follow-up turns (mostly
    # copies) diluted the arithmetic and the tables stayed half-learned after 5 CPU minutes;
    # with only 700 mixed steps, retries were noisier than first attempts (Δ -0.10).
    max_single_steps: int = 1200
    table_accuracy: float = 0.98     # 64 solutions x ~7 results: the probe's own noise is ~±0.01
    single_seq_len: int = 192        # phase-1 rows (single attempts are ≤ 60 tokens): faster steps
    mixed_steps: int = 1000
    batch_size: int = 8
    seq_len: int = 384               # rows hold whole documents (longest ≈ 330 tokens)
    lr: float = 2e-3
    warmup: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 2                 # fixed so that a seed gives identical weights on any CPU

    def fingerprint(self) -> str:
        blob = json.dumps({"spec": dataclasses.asdict(self), "recipe": RECIPE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


TOY_MODELS: dict[str, ToySpec] = {
    # the embedded default: first attempts at T=1 ≈ 0.4-0.8 correct, greedy ≈ 0.95+
    "arith": ToySpec(),
    # a few training steps only: for tests of the build itself (determinism, caching), seconds
    "arith-tiny": ToySpec(max_single_steps=4, mixed_steps=4, batch_size=8, seq_len=384, hidden_size=32, num_layers=1,
                          num_heads=2, intermediate_size=64, warmup=2),
}
