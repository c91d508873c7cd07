"""01_intrinsic's parameters: the strategies compared, the doubt-prior sweep, the fine-tuning budget.

    >>> from sclab.runs.notebook_params.intrinsic import IntrinsicParams, check_intrinsic_strategies
    >>> IntrinsicParams().doubt_rates, check_intrinsic_strategies(["retry"], None) is None
    ([0.0, 0.4, 0.8], True)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import check_task
from .episode import EpisodeParams
from .fields import checked, ranged


def check_intrinsic_strategies(value: Any, root: Path) -> str | None:
    from sclab.strategies import STRATEGIES  # torch-free

    # oracle feedback needs oracle stopping, critic feedback a critic: no place in a list of intrinsic strategies
    intrinsic = sorted(n for n, st in STRATEGIES.items() if st.intrinsic)
    if not value:
        return f"no strategies given; a non-empty list of: {', '.join(intrinsic)}"
    bad = [v for v in value if v not in intrinsic]
    if bad:
        return f"unknown or non-intrinsic strategies {bad}; a list of: {', '.join(intrinsic)}"
    return None


@dataclass
class IntrinsicParams(EpisodeParams):
    mc_task: str = checked("arith", check_task)  # multiple choice: "arith" (the toy world's options format) or "commonsenseqa"
    strategies: list[str] = checked(["retry", "huang-review", "self-refine", "cct-reask", "cct-confident",
                                     "cct-critical", "score-instruction", "are-you-sure"], check_intrinsic_strategies)
    rounds: int = ranged(5, 1)
    n_boot: int = ranged(1000, 1)
    doubt_rates: list[float] = ranged([0.0, 0.4, 0.8], 0, 1, why="P(pretraining flips its answer)")  # [] skips the sweep
    doubt_steps: int = ranged(150, 0)  # 0: the doubt priors are compared without continued pretraining
    sft_train_problems: int = ranged(400, 1)
    sft_budget: int = ranged(600, 1)
    sft_epochs: int = ranged(1, 1)
    sft_lr: float = ranged(0.0003, 0, open_lo=True)
    sft_lora: bool = False
