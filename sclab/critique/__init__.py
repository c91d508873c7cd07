"""Critique models: can a model judge its own answers, and does a judge make correction work?

Four modules:

- `verifier`: value heads on a copy of the policy (ORM, SORM, P(IK)) and its verdict tokens
  (trained P(True)), trained pointwise on BCE (`value_model`, `verdict_model`, `train_value`,
  `predict`);
- `steps`: samples as token rows with their step ends (`attempt_rows`, `outcome_rows`,
  `step_rows`, `pik_rows`), GLoRe's step labels from policy rollouts (`rollout_labels`), and local
  refinement from a flagged step (`first_flag`, `resume`);
- `ptrue`: Kadavath's P(True) prompt, with brainstormed samples, in the chat and toy dialects;
- `judge`: AUROC, ECE, RMS and Brier with problem-bootstrap CIs, by error kind and within
  difficulty buckets (`signal_table`).

On the toy world the exact prefix values V* and V^π are known (`sclab.toy.values`): the targets
that GLoRe says its SORM and ORM approximate.

    >>> from sclab.critique import first_flag
    >>> first_flag([0.9, 0.2])
    1
"""
from sclab.critique.judge import auroc_difference, kind_auroc, signal_table, within_auroc
from sclab.critique.ptrue import ptrue_conversation, ptrue_rows, verdict_ids
from sclab.critique.steps import (Attempted, attempt_rows, first_flag, likelihood_steps, outcome_rows, pik_rows, resume,
                                  rollout_labels, step_rows)
from sclab.critique.verifier import Row, ValueModel, VerdictModel, predict, train_value, value_model, verdict_model

__all__ = ["Attempted", "Row", "ValueModel", "VerdictModel", "attempt_rows", "auroc_difference", "first_flag",
           "kind_auroc", "likelihood_steps", "outcome_rows", "pik_rows", "predict", "ptrue_conversation", "ptrue_rows",
           "resume", "rollout_labels", "signal_table", "step_rows", "train_value", "value_model", "verdict_ids",
           "verdict_model", "within_auroc"]
