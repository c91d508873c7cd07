"""Runs: parameters, recorded results, papermill batch execution and the report.

Notebooks call `record`, `save_records` and `save_figure`; `sclab run` / `sclab report`
(sclab.cli) drive `run_notebook`, `run_all` and `build_report`.

    >>> from sclab.runs import load_params, params_hash
    >>> len(params_hash(load_params("00_quickstart")))
    16
"""
from .execute import RunResult, run_all, run_notebook
from .params import (NOTEBOOK_PARAMS, ParamError, load_params, notebook_parameters, outputs_root,
                     params_hash, project_root)
from .record import record, recorded, run_dir, save_figure, save_records
from .report import build_report

__all__ = [
    "NOTEBOOK_PARAMS", "ParamError", "load_params", "notebook_parameters", "params_hash",
    "project_root", "outputs_root", "record", "recorded", "run_dir", "save_records",
    "save_figure", "RunResult", "run_notebook", "run_all", "build_report",
]
