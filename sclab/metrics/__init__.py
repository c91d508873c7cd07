"""Self-correction metrics: pure functions of a records table (`sclab.records`), with bootstrap CIs.

A record is one (problem_id, sample, turn) with at least `correct` (bool) and optionally
`extracted` (str or None, None = extraction failure), `tokens`, `time` (s), `truncated`.
One module per concern, everything re-exported here:

- `correction`: Acc@t, Δ, Δi→c, Δc→i (SCoRe, arXiv 2409.12917), CL/CS/RSS exactly as the
  Confidence-v.s.-Critique code computes them (arXiv 2412.19513), oracle stopping (Huang et al.,
  arXiv 2310.01798), answer changes, extraction failures, token cost, truncation, edit distance;
- `sampling`: pass@k (Chen et al. 2021) and maj@k;
- `calibration`: ECE, RMS calibration error, Brier, AUROC (Kadavath et al., arXiv 2207.05221);
- `bootstrap`: problem-bootstrap CIs (`bootstrap_ci`, the vectorised `metrics_with_ci`);
- `convergence`: multi-round CL/CS convergence (arXiv 2508.16456);
- `second_attempt`: does attempt 2 read attempt 1 (keep/fix, sequential vs parallel, probes).

    >>> import pandas as pd; from sclab.metrics import correction_metrics
    >>> correction_metrics(pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2], "correct": [True, True, False, True]}))["delta"]
    0.5

Ratios whose denominator is zero (CL when nothing is right at t1, CS when nothing is wrong,
RSS with Acc1 in {0, 1}, AUROC with one class) are NaN, never an exception or a silent 0.
"""
from sclab.metrics.bootstrap import bootstrap_ci, draws, interval, metrics_with_ci, paired_diff_ci
from sclab.metrics.calibration import auroc, brier, ece, rms_calibration_error
from sclab.metrics.convergence import fit_convergence, predict_rounds
from sclab.metrics.correction import (CORRECTION_KEYS, answer_changed_rate, correction_metrics, edit_distance_rate,
                                      extraction_failure_rate, from_counts, oracle_stop, ratio, token_cost,
                                      token_edit_distance, transition_counts, truncation_rate, turn_accuracy)
from sclab.metrics.sampling import maj_at_k, pass_at_k, pass_at_k_df
from sclab.metrics.second_attempt import (keep_fix_rates, mechanism, probe_summary, second_attempt_report,
                                          sequential_vs_parallel)

__all__ = [
    "CORRECTION_KEYS", "correction_metrics", "oracle_stop", "turn_accuracy", "pass_at_k", "pass_at_k_df", "maj_at_k",
    "answer_changed_rate", "extraction_failure_rate", "token_cost", "token_edit_distance", "edit_distance_rate",
    "truncation_rate", "ratio", "transition_counts", "from_counts",
    "ece", "rms_calibration_error", "brier", "auroc",
    "draws", "interval", "bootstrap_ci", "metrics_with_ci", "paired_diff_ci",
    "fit_convergence", "predict_rounds",
    "keep_fix_rates", "sequential_vs_parallel", "probe_summary", "second_attempt_report", "mechanism",
]
