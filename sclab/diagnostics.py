"""The second-attempt diagnostics under their old name (kept for the notebooks until they import
the new homes): the readouts live in `sclab.metrics.second_attempt`, what generates in
`sclab.probes`, the toy world's edit locations in `sclab.toy.edits`.

    >>> from sclab.diagnostics import keep_fix_rates
    >>> from sclab.metrics import keep_fix_rates as new; keep_fix_rates is new
    True
"""
from sclab.metrics.second_attempt import (keep_fix_rates, mechanism, probe_summary, second_attempt_report,
                                          sequential_vs_parallel)
from sclab.probes import (PARALLEL_COLUMNS, PROBE_COLUMNS, context_swap, derangement, evaluate_model, gold_probe,
                          parallel_resample, probe_second_attempt, swap_donors)
from sclab.toy.edits import EDIT_KINDS, edit_locations, locate_edits, summarize_edits, toy_clean_solution

__all__ = [
    "mechanism", "evaluate_model", "keep_fix_rates", "parallel_resample", "sequential_vs_parallel",
    "probe_second_attempt", "toy_clean_solution", "gold_probe", "derangement", "swap_donors", "context_swap",
    "probe_summary", "locate_edits", "edit_locations", "summarize_edits", "second_attempt_report",
    "PROBE_COLUMNS", "PARALLEL_COLUMNS", "EDIT_KINDS",
]
