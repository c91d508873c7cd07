"""The per-notebook parameter dataclasses, one module per notebook; each field declares its checks.

A field's type, default (= the notebook's quick preset) and what it allows live together: a
number declares its range (`ranged(default, lo, hi)`), a choice its check (`checked(default,
check)`), a list its item type (`list[str]`, `list[float]`) and an item range or a check.
`sclab.runs.params.load_params` reads them; a test fails if a field declares neither.

    >>> from sclab.runs.notebook_params import NOTEBOOK_PARAMS
    >>> sorted(NOTEBOOK_PARAMS), NOTEBOOK_PARAMS["01_intrinsic"]().strategies[:2]
    (['00_quickstart', '01_intrinsic', '02_rl_correction', '03_sharpening', '04_critique_models'], ['retry', 'huang-review'])
"""
from .critique import CritiqueParams
from .episode import EpisodeParams
from .fields import Range, checked, field_default, field_range, ranged
from .intrinsic import IntrinsicParams
from .quickstart import QuickstartParams
from .rl import RLParams
from .sharpening import SharpeningParams

# notebook stem -> its dataclass; a new notebook adds its module and one line here
NOTEBOOK_PARAMS: dict[str, type] = {
    "00_quickstart": QuickstartParams,
    "01_intrinsic": IntrinsicParams,
    "02_rl_correction": RLParams,
    "03_sharpening": SharpeningParams,
    "04_critique_models": CritiqueParams,
}

__all__ = ["NOTEBOOK_PARAMS", "CritiqueParams", "EpisodeParams", "QuickstartParams", "IntrinsicParams", "RLParams", "SharpeningParams", "Range",
           "checked", "field_default", "field_range", "ranged"]
