"""The toy world's named models and their recipes (torch-free, so parameter checks stay fast).

A toy model is fully described by a `ToySpec`: the world it is pretrained on (`ToyWorld`:
the task, the slip rate ε and the priors that the papers attribute to pretraining) plus the
model size and the training budget. `load("toy:<name>")` builds the spec once and caches it.

    >>> from sclab.toy.registry import TOY_MODELS
    >>> TOY_MODELS["arith"].world.slip_rate
    0.03
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

# bump when the world or the trainer changes in a way that changes the weights
RECIPE_VERSION = 8

RETRY_WORDS = ("again", "confirm", "check")


@dataclass(frozen=True)
class ToyWorld:
    """The synthetic task and the pretraining mix.

    Task: the *iterated program* `x0 ; op1 c1 op2 c2 ; n ?`, solved line by line as
    `a op c = r ;` (op1 then op2, n times, mod p), final answer after `>`.

    Three kinds of error, each a knob, so every result can say which errors a method fixes
    (`sclab.toy.labels` names the kind of any attempt's first wrong line):
    - *slips*: a line's result is wrong at random (rate `slip_rate`); the model knows better;
    - *unsure facts*: `n_unsure` table entries are taught right only with probability
      `unsure_right`, otherwise one fixed wrong value: the model's belief is split;
    - *misconceptions*: `n_misconceptions` entries are taught right with probability
      `misconception_right` < 1/2: greedy decoding is confidently wrong, no self-check sees it.
    """

    p: int = 13                      # arithmetic modulus (numbers are single tokens 0..p-1)
    ops: tuple[str, ...] = ("+", "-")  # two ops, as prototyped: with "*" too, its table was still half-learned after 5 CPU minutes
    n_min: int = 1                   # program repetitions in pretraining (2n solution lines)
    n_max: int = 6
    test_fraction: float = 0.1       # programs held out of pretraining (hash partition)
    # Slips: a fraction of pretraining solution lines carry a random wrong result that later
    # lines follow ("Physics of Language Models 2.2", arXiv 2408.16293), so sampled attempts
    # contain errors that a second look can find. 0.03 (0.05 in world v1): with the table's
    # errors on top, first attempts at T=1 stay near 0.6 correct.
    slip_rate: float = 0.03
    # Unsure facts and misconceptions: a fixed, seeded subset of the 13 x 24 = 312 entries
    # (a, op c) of the arithmetic table (`sclab.toy.world.error_table`). 20 entries (6%) taught
    # right 60% of the time give ~2.6% wrong lines at T=1, mostly right under greedy decoding;
    # 5 entries (1.6%) taught right 30% of the time put greedy accuracy near 0.85 (a program
    # has 4-12 lines) - the "confidently wrong" errors (Huang et al. arXiv 2310.01798's reason
    # why intrinsic correction fails).
    n_unsure: int = 20
    unsure_right: float = 0.6
    n_misconceptions: int = 5
    misconception_right: float = 0.3
    table_seed: int = 0              # which entries are unsure / misconceptions, and their wrong values
    # Follow-up turns in pretraining. A neutral base: after a retry word the next attempt keeps
    # the answer (`same > r`), revises, or is a fresh attempt - never a fix - so the base
    # model's intrinsic Δ ≈ 0. A *revision* (`revise <lines> redo <lines> > r`) copies the
    # previous attempt's first k lines verbatim, slips included, with k uniform on 1..L-1 and
    # independent of where that attempt went wrong, then redoes the rest with the first
    # attempt's error rates; `redo` ends the last copied line, so which line a revision started
    # from is visible in its text. This is the copy circuit a method can learn to use selectively
    # ("keep what is right, redo from the first wrong line") while the base stays neutral.
    followup_rate: float = 0.8       # fraction of documents with at least one follow-up
    max_attempts: int = 4            # attempts per pretraining document (multi-round episodes)
    # P(keep the answer) and P(revise) after each retry word; otherwise a fresh attempt. The words
    # differ only in these priors, which is what lets prompt variants shift the CL-CS trade-off
    # (arXiv 2412.19513): "confirm" (a confident prompt) keeps more, "check" (a critical prompt)
    # re-solves more.
    keep_rates: tuple[tuple[str, float], ...] = (("again", 0.3), ("confirm", 0.6), ("check", 0.15))
    # Revisions: off (0) by default. Within the build budget a model does not learn to write them:
    # it recomputes what it should copy (it copied none of its slips in five builds) and loses
    # count of its lines, so its revisions are far less accurate than its first attempts and the
    # base stops being neutral. Measured (1000 x 2 held-out samples, `sclab.toy.card`): revise
    # rates 0.3 / 0.2 / 0.4 gave every word Δ ≈ -0.06 (revised attempts 0.57 right before, 0.42
    # after); 0.1 each gave Δ -0.04 / -0.06 / -0.04, most of it from revisions that never wrote
    # `redo` (0.56 -> 0.22). A world with revisions is one `dataclasses.replace` away; its card
    # says what they cost.
    revise_rates: tuple[tuple[str, float], ...] = (("again", 0.0), ("confirm", 0.0), ("check", 0.0))
    # Conflict documents: copying a wrong line against what the arithmetic says is the hard
    # part of a revision. This fraction of documents with follow-ups draws its first attempt
    # with slips at `conflict_slip_rate` and takes the loss off it (context only, so first
    # attempts are not taught the higher rate); the follow-ups are drawn as in every document,
    # so what a retry does never depends on how many slips it sees. Off by default: within the
    # build budget the model did not learn to copy slips either way (override rate ~1.0 at
    # copied slips with 0.4 / 0.3 and ToySpec.copy_weight 3), and a model that recomputes what
    # it should copy learns a noisier arithmetic from them: its revisions erred on 9% of lines
    # against 7% in first attempts, and every retry word's Δ fell to -0.02 .. -0.06.
    conflict_rate: float = 0.0
    conflict_slip_rate: float = 0.3
    # After "wrong" (oracle feedback, only ever after a wrong attempt) the next attempt is a
    # fresh one: the oracle-retry fix rate measures how many errors a fresh look fixes, by kind.
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

    def behaviour_rates(self, word: str) -> tuple[float, float, float]:
        """P(keep), P(revise), P(fresh) after retry `word` in pretraining."""
        keep, revise = dict(self.keep_rates).get(word, 0.0), dict(self.revise_rates).get(word, 0.0)
        return keep, revise, 1.0 - keep - revise


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
    mixed_steps: int = 900
    # loss weight on a revision's copied results, right and wrong (`sample_document`'s
    # conflicts): only where attempt 1 was wrong do copying and recomputing differ. Given the
    # context a copied result is certain, so a weight speeds learning without moving the
    # optimum - if the model can tell copying from computing. 1 (off): with 3 and conflict
    # documents the build still recomputed its copies, more noisily (see ToyWorld.conflict_rate);
    # weighting only the wrong copies taught that a copied result *disagrees* with the
    # arithmetic (copies of right lines wrong 35% of the time, first attempts 19 points worse).
    copy_weight: float = 1.0
    # phase 1 with this fraction of documents carrying follow-ups (0: single attempts only).
    # 0.3 let the words' priors be learned more closely but lengthened the table plateau from
    # ~550 to ~850 steps (a build of 374 s)
    single_followup_rate: float = 0.0
    batch_size: int = 8
    seq_len: int = 384               # rows hold whole documents (longest ≈ 330 tokens)
    lr: float = 2e-3
    warmup: int = 50
    weight_decay: float = 0.01
    # seed 1: its table plateau (phase 1) ends near step 550; seed 0's lasted past 1200 steps
    seed: int = 1
    threads: int = 2                 # fixed so that a seed gives identical weights on any CPU

    def fingerprint(self) -> str:
        blob = json.dumps({"spec": dataclasses.asdict(self), "recipe": RECIPE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


TOY_MODELS: dict[str, ToySpec] = {
    # the embedded default: first attempts at T=1 ≈ 0.4-0.8 correct, greedy ≈ 0.95+
    "arith": ToySpec(),
    # the same world and recipe from another seed: another model with the same errors to make (its table's unsure
    # facts and misconceptions are the world's), whose own slips and beliefs differ - 04's "other model" (GCM)
    "arith-b": ToySpec(seed=2),
    # a few training steps only: for tests of the build itself (determinism, caching), seconds
    "arith-tiny": ToySpec(max_single_steps=4, mixed_steps=4, batch_size=8, seq_len=384, hidden_size=32, num_layers=1,
                          num_heads=2, intermediate_size=64, warmup=2),
}


def toy_world(spec: str) -> ToyWorld | None:
    """The world a model spec was pretrained on: its `ToyWorld` for `toy:<name>`, None for any
    other spec (a path or a hub id: a model of no toy world).

        >>> toy_world("toy:arith").slip_rate, toy_world("Qwen/Qwen2.5-1.5B-Instruct")
        (0.03, None)
    """
    if not isinstance(spec, str) or not spec.startswith("toy:"):
        return None
    name = spec[len("toy:"):]
    if name not in TOY_MODELS:
        raise ValueError(f"model {spec!r}: unknown toy model; valid: "
                         + ", ".join(f"toy:{n}" for n in sorted(TOY_MODELS)))
    return TOY_MODELS[name].world
