"""What every episode notebook has: the model, backend and task, the seed and the sampling budget.

    >>> from sclab.runs.notebook_params.episode import EpisodeParams
    >>> EpisodeParams().model, EpisodeParams(n_problems=5).n_problems
    ('toy:arith', 5)
"""
from __future__ import annotations

from dataclasses import dataclass

from .checks import check_backend, check_model, check_task, need_backend
from .fields import checked, ranged


@dataclass
class EpisodeParams:
    """Each notebook's dataclass adds its own fields to these."""

    model: str = checked("toy:arith", check_model)  # toy:<name>, a local path or a hub id
    backend: str = checked("hf", check_backend, requires=need_backend)  # "hf" (transformers, CPU/GPU) or "vllm" (GPU)
    task: str = checked("arith", check_task)        # a name in sclab.tasks.TASKS
    seed: int = ranged(0, 0)       # numpy's default_rng refuses negative seeds
    n_problems: int = ranged(300, 1)
    n_samples: int = ranged(4, 1)
    temperature: float = ranged(1.0, 0)  # 0 = greedy
    max_new_tokens: int = ranged(160, 1)
    batch_size: int = ranged(64, 1)
