"""00_quickstart's parameters: the toy world's card needs many problems, one strategy is shown.

    >>> from sclab.runs.notebook_params.quickstart import QuickstartParams
    >>> QuickstartParams().n_problems, QuickstartParams().strategy
    (1000, 'retry')
"""
from __future__ import annotations

from dataclasses import dataclass

from .checks import check_strategy
from .episode import EpisodeParams
from .fields import checked, ranged


@dataclass
class QuickstartParams(EpisodeParams):
    n_problems: int = ranged(1000, 1)  # the world card's neutral-base check: Δ's CI near ±0.02
    n_samples: int = ranged(2, 1)
    strategy: str = checked("retry", check_strategy)
