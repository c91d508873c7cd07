"""04_critique_models' parameters: the policy's samples, the verifiers' training, refinement and critique.

    >>> from sclab.runs.notebook_params.critique import CritiqueParams
    >>> CritiqueParams().train_samples, CritiqueParams().sorm_rollouts
    (8, 4)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import check_model, check_strategy
from .episode import EpisodeParams
from .fields import checked, ranged
from .sharpening import check_train_task


def check_step_stop(value: Any, root: Path) -> str | None:
    if not isinstance(value, str) or not value:
        return f"must be a non-empty str (the toy's ';', a chat model's newline), got {value!r}"
    return None


def check_other_model(value: Any, root: Path) -> str | None:
    if value == "":
        return None   # no other model: section 8 keeps the fresh network only
    return check_model(value, root)


@dataclass
class CritiqueParams(EpisodeParams):
    n_problems: int = ranged(500, 1)      # held-out problems every verifier is scored on
    n_samples: int = ranged(4, 1)         # T = 1 samples per held-out problem (the attempts judged)
    temperature: float = ranged(1.0, 0, open_lo=True, why="the verifiers judge the policy's T = 1 samples")
    max_new_tokens: int = ranged(72, 1)   # a 12-line toy solution is 62 tokens
    n_boot: int = ranged(300, 1)
    train_task: str = checked("arith", check_train_task)  # verifiers train on this task's train split (never the held-out problems)
    train_problems: int = ranged(300, 2)  # training-split problems whose samples the verifiers learn from
    train_samples: int = ranged(8, 2, why="P(IK)'s target is an accuracy over several samples")
    verifier_steps: int = ranged(200, 1)  # AdamW steps for each verifier (ORM, SORM, P(IK), P(True))
    verifier_lr: float = ranged(0.001, 0, open_lo=True)
    verifier_batch: int = ranged(32, 1)
    lora: bool = False                    # LoRA adapters on the verifiers' copies (the GPU preset) instead of full fine-tuning
    sorm_samples: int = ranged(1, 1)      # samples per training problem whose prefixes get rollout labels
    sorm_rollouts: int = ranged(4, 1)     # K: rollouts from each prefix (label = any of them right)
    brainstorm: int = ranged(3, 0)        # other samples shown before the proposed answer (0 skips P(True) with brainstorming)
    flag_threshold: float = ranged(0.5, 0, 1)  # a step is flagged when the SORM's value falls below this
    critic_threshold: float = ranged(0.5, 0, 1)  # the ORM critic objects below this confidence
    step_stop: str = checked(";", check_step_stop)  # the text that ends a solution step (the toy's ';', a chat model's newline)
    intrinsic_strategy: str = checked("cct-critical", check_strategy)  # the intrinsic retry that critique is compared with
    # GCM's other model: a verifier on its weights, and one trained on its history ("" skips); the policy's tokenizer
    other_model: str = checked("toy:arith-b", check_other_model)
    # critique as training data (AutoMathCritique): SFT epochs on each arm's data (0 skips the section) and its rate
    critique_sft_epochs: int = ranged(3, 0, 50)
    critique_sft_lr: float = ranged(0.001, 0, 1, open_lo=True)
