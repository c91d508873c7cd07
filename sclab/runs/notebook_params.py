"""The per-notebook parameter dataclasses: each field's type, default (= the quick preset) and range.

A numeric field declares its allowed range where it is defined, with `ranged(default, lo, hi)`;
`sclab.runs.params.load_params` checks every value against it (and refuses NaN and infinities)
before any kernel starts. Choice fields (model, backend, task, strategy, ...) are checked by
name in `sclab.runs.params.CHECKS`; a test fails if a numeric field has no range.

    >>> from sclab.runs.notebook_params import QuickstartParams, field_range
    >>> str(field_range(QuickstartParams, "temperature")), -1 in field_range(QuickstartParams, "n_problems")
    ('[0, ∞)', False)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Range:
    """[lo, hi] (None: unbounded); open_lo makes the lower end exclusive (learning rates > 0)."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    why: str = ""  # said in the error message when the bound has a reason beyond "a count"

    def __contains__(self, value) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.open_lo else value < self.lo):
            return False
        return self.hi is None or value <= self.hi

    def __str__(self) -> str:
        lo = "(-∞" if self.lo is None else ("(" if self.open_lo else "[") + f"{self.lo:g}"
        hi = "∞)" if self.hi is None else f"{self.hi:g}]"
        return f"{lo}, {hi}"


def ranged(default, lo: float | None = None, hi: float | None = None, *, open_lo: bool = False,
           why: str = ""):
    """A dataclass field whose value must lie in Range(lo, hi, open_lo)."""
    return field(default=default, metadata={"range": Range(lo, hi, open_lo, why)})


def field_range(cls: type, name: str) -> Range | None:
    """The Range a dataclass field declares, or None."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("range")
    raise KeyError(name)


@dataclass
class EpisodeParams:
    """What every episode notebook has; each notebook's dataclass adds its own fields."""

    model: str = "toy:arith"       # toy:<name>, a local path or a hub id
    backend: str = "hf"            # "hf" (transformers, CPU/GPU) or "vllm" (GPU)
    task: str = "arith"            # a name in sclab.tasks.TASKS
    seed: int = ranged(0, 0)       # numpy's default_rng refuses negative seeds
    n_problems: int = ranged(300, 1)
    n_samples: int = ranged(4, 1)
    temperature: float = ranged(1.0, 0)  # 0 = greedy
    max_new_tokens: int = ranged(160, 1)
    batch_size: int = ranged(64, 1)


@dataclass
class QuickstartParams(EpisodeParams):
    n_problems: int = ranged(1000, 1)  # the world card's neutral-base check: Δ's CI near ±0.02
    n_samples: int = ranged(2, 1)
    strategy: str = "retry"


@dataclass
class IntrinsicParams(EpisodeParams):
    mc_task: str = "arith"         # multiple choice: "arith" (the toy world's options format) or "commonsenseqa"
    strategies: str = "retry,huang-review,self-refine,cct-reask,cct-confident,cct-critical,score-instruction,are-you-sure"
    rounds: int = ranged(5, 1)
    n_boot: int = ranged(1000, 1)
    doubt_rates: str = "0.0,0.4,0.8"
    doubt_steps: int = ranged(150, 0)  # 0: the doubt priors are compared without continued pretraining
    sft_train_problems: int = ranged(400, 1)
    sft_budget: int = ranged(600, 1)
    sft_epochs: int = ranged(1, 1)
    sft_lr: float = ranged(0.0003, 0, open_lo=True)
    sft_lora: bool = False


@dataclass
class RLParams(EpisodeParams):
    n_problems: int = ranged(1000, 1)  # held-out problems every method is evaluated on
    n_samples: int = ranged(1, 1)
    max_new_tokens: int = ranged(72, 1)  # per attempt (a 12-line toy solution is 62 tokens, its revision 64)
    second_turn: str = "score-instruction"  # the strategy between attempts, in training and evaluation
    train_problems: int = ranged(2000, 1)  # training-split problems (RL prompts and the baselines' data)
    n_boot: int = ranged(1000, 1)
    rl_prompts_per_step: int = ranged(16, 1)  # prompts per RL step
    rl_generations: int = ranged(4, 2, why="GRPO's group baseline needs 2 rollouts per prompt")  # rollouts per prompt (GRPO's group)
    rl_lr: float = ranged(0.0005, 0, open_lo=True)
    stage1_steps: int = ranged(30, 1)  # TRL reads max_steps=0 as "train by epochs"
    stage2_steps: int = ranged(60, 1)
    stage1_beta_turn1: float = ranged(10.0, 0)  # β2: KL on attempt 1 in stage I (strong: attempt 1 must stay the base's)
    beta_turn1: float = ranged(10.0, 0)  # stage II KL on attempt 1
    beta_turn2: float = ranged(0.01, 0)  # stage II KL on attempt 2 (β1)
    alpha: float = ranged(2.0, 0)  # the shaping bonus α·(r2 − r1) on attempt 2
    eval_problems: int = ranged(200, 1)  # held-out problems for the training curves
    eval_every: int = ranged(10, 1)  # steps between training-curve evaluations
    ablations: bool = True         # also train: without stage I, without shaping, single-turn RL
    baseline_samples: int = ranged(2, 1)  # base-model episodes per training problem (data for STaR, Pair-SFT, DPO)
    sft_budget: int = ranged(600, 1)  # examples per SFT / DPO method (equal data budget)
    sft_epochs: int = ranged(1, 1)
    sft_lr: float = ranged(0.0003, 0, open_lo=True)
    dpo_lr: float = ranged(0.0001, 0, open_lo=True)
    dpo_beta: float = ranged(0.1, 0, open_lo=True)  # DPO's β scales the log-ratio: 0 makes the loss constant
    lora: bool = False             # LoRA adapters (the GPU preset) instead of full fine-tuning
    parallel_k: int = ranged(8, 2, why="k/2 two-attempt episodes against k samples")  # sequential vs parallel: k generations per problem
    parallel_problems: int = ranged(200, 1)  # problems for the equal-budget comparison


NOTEBOOK_PARAMS: dict[str, type] = {
    "00_quickstart": QuickstartParams,
    "01_intrinsic": IntrinsicParams,
    "02_rl_correction": RLParams,
}
