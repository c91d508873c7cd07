"""03_sharpening's parameters: the shared pool, SFT- and RL-sharpening, DSER's chains, SRGen, step search.

    >>> from sclab.runs.notebook_params.sharpening import SharpeningParams
    >>> SharpeningParams().n_samples, SharpeningParams().rl_betas
    (16, [1.0, 0.5])
"""
from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path
from typing import Any

from .checks import check_strategy, check_task
from .episode import EpisodeParams
from .fields import checked, ranged

# benchmarks published as a test split only: nothing to train on (their problems() refuse split="train")
TEST_ONLY = {"math500", "humaneval"}


def check_train_task(value: Any, root: Path) -> str | None:
    bad = check_task(value, root)
    if bad or value not in TEST_ONLY:
        return bad
    return f"{value!r} has only a test split: train on another task's train split (e.g. gsm8k for math500)"


@dataclass
class SharpeningParams(EpisodeParams):
    n_problems: int = ranged(500, 1)   # held-out problems every method is evaluated on
    n_samples: int = ranged(16, 1)     # the shared pool: samples per problem (best-of-N up to N = n_samples)
    temperature: float = ranged(1.0, 0, open_lo=True, why="T = 0 gives n copies of one answer")  # the pool's sampler
    max_new_tokens: int = ranged(72, 1)  # a 12-line toy solution is 62 tokens
    n_boot: int = ranged(1000, 1)
    train_task: str = checked("arith", check_train_task)  # where SFT/RL-sharpening's training prompts come from (its train split)
    sft_train_problems: int = ranged(400, 1)  # training-split problems whose best-of-N picks SFT-sharpening learns
    sft_epochs: int = ranged(3, 1)
    sft_lr: float = ranged(0.001, 0, open_lo=True)
    eval_samples: int = ranged(4, 1)   # T = 1 samples per held-out problem for a tuned model's single-sample accuracy
    lora: bool = False                 # LoRA adapters (the GPU preset) instead of full fine-tuning
    rl_betas: list[float] = ranged([1.0, 0.5], 0, open_lo=True, why="the optimum ∝ π_base^(1+1/β) needs β > 0")
    rl_steps: int = ranged(60, 1)      # TRL reads max_steps=0 as "train by epochs"
    rl_prompts_per_step: int = ranged(8, 1)
    rl_generations: int = ranged(4, 2, why="GRPO's group baseline needs 2 rollouts per prompt")
    rl_lr: float = ranged(0.0003, 0, open_lo=True)
    rl_micro_batch: int = ranged(0, 0)  # rows per forward/backward within a step (0: all at once; a GPU preset splits them)
    dser_strategy: str = checked("self-refine", check_strategy)  # the verify→refine turn of DSER's chains
    dser_problems: int = ranged(200, 1)
    dser_chains: int = ranged(4, 1)    # parallel chains per problem
    dser_rounds: int = ranged(6, 1)    # refine rounds after the first attempt
    dser_vote_last: int = ranged(3, 1)  # DSER's majority vote over each chain's last iterations (at most dser_rounds + 1)
    srgen_problems: int = ranged(200, 0)  # 0 skips SRGen
    srgen_k: float = ranged(2.0, 0)    # trigger: entropy > window mean + k·std
    srgen_steps: int = ranged(3, 1)    # gradient steps on the corrective vector
    srgen_window: int = ranged(10, 2, why="a std needs two entropies")  # tokens in the trigger's window
    srgen_min_std: float = ranged(0.0, 0)  # floor on the window's std (the reference code: 0.5 nats)
    srgen_min_threshold: float = ranged(0.0, 0)  # floor on the trigger's entropy (the reference code: 1.8 nats)
    search_problems: int = ranged(200, 0)  # 0 skips the step-level search
    search_beam: int = ranged(4, 1)
    search_expand: int = ranged(4, 1)
