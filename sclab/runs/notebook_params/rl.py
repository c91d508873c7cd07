"""02_rl_correction's parameters: SCoRe's two stages, the ablations, the SFT and DPO baselines.

    >>> from sclab.runs.notebook_params.rl import RLParams, check_even
    >>> RLParams().second_turn, check_even(3, None)
    ('score-instruction', 'must be even (k/2 two-attempt episodes against k samples), got 3')
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .episode import EpisodeParams
from .fields import checked, ranged


def check_second_turn(value: Any, root: Path) -> str | None:
    from sclab.strategies import STRATEGIES  # torch-free

    # two-attempt RL injects one user message that depends on the problem alone (no gold label)
    ok = sorted(n for n, st in STRATEGIES.items() if len(st.chat) == 1 and len(st.toy) == 1 and st.static)
    if value not in ok:
        return f"{value!r} is not a one-message strategy without the gold label; valid: {', '.join(ok)}"
    return None


def check_even(value: Any, root: Path) -> str | None:
    return None if value % 2 == 0 else f"must be even (k/2 two-attempt episodes against k samples), got {value}"


@dataclass
class RLParams(EpisodeParams):
    n_problems: int = ranged(1000, 1)  # held-out problems every method is evaluated on
    n_samples: int = ranged(1, 1)
    max_new_tokens: int = ranged(72, 1)  # per attempt (a 12-line toy solution is 62 tokens, its revision 64)
    second_turn: str = checked("score-instruction", check_second_turn)  # the strategy between attempts, in training and evaluation
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
    parallel_k: int = ranged(8, 2, why="k/2 two-attempt episodes against k samples",
                             check=check_even)  # sequential vs parallel: k generations per problem
    parallel_problems: int = ranged(200, 1)  # problems for the equal-budget comparison
