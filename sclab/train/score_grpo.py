"""`SCoReTrainer`: TRL's `GRPOTrainer` with SCoRe's per-token credit and per-turn KL (arXiv 2409.12917).

The credit of each turn comes from `sclab.train.score.turn_returns` (stage I, II or single),
normalised within its prompt group (`group_advantages`) and spread over that turn's tokens
(`token_advantages`); the KL to the reference is weighted per turn. The rollouts are
`sclab.train.two_attempt.TwoAttemptRollout`'s. Built on first use (importing TRL costs
seconds): `sclab.train.score.SCoReTrainer` or `trainer_class()`.

    >>> from sclab.train.score_grpo import trainer_class
    >>> trainer_class().__name__, trainer_class().__mro__[1].__name__
    ('SCoReTrainer', 'GRPOTrainer')
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from sclab.train.score import STAGES, group_advantages, token_advantages, turn_returns
from sclab.train.trl_glue import attach_reference


@functools.cache
def trainer_class():
    """The `SCoReTrainer` class (one class per process: TRL is imported on the first call)."""
    from trl import GRPOTrainer

    class SCoReTrainer(GRPOTrainer):
        """GRPOTrainer with SCoRe's per-turn credit (`turn_returns`) and per-turn KL weights.

        TRL's own `beta` only switches the reference log-probs on; the KL term added to the loss is
        Σ_t beta(turn of t)·KL_t over model tokens, aggregated like TRL's 'grpo' loss."""

        def __init__(self, *args, stage: str = "II", alpha: float = 0.0, beta_turn1: float = 0.1,
                     beta_turn2: float = 0.01, ref_model=None, credit_turn1: bool = True, **kwargs):
            if stage not in STAGES:
                raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
            for name, v in (("alpha", alpha), ("beta_turn1", beta_turn1), ("beta_turn2", beta_turn2)):
                if not np.isfinite(v) or v < 0:
                    raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
            config = kwargs["args"]
            if config.loss_type != "grpo":
                raise ValueError(f"SCoReTrainer aggregates its per-turn KL like loss_type='grpo'; got {config.loss_type!r}")
            want_ref = beta_turn1 > 0 or beta_turn2 > 0
            config.beta = 0.0  # no reference built from config._name_or_path: we pass ours (or PEFT's disabled adapter)
            super().__init__(*args, **kwargs)
            self.stage, self.alpha, self.credit_turn1 = stage, float(alpha), bool(credit_turn1)
            self.beta_turn1, self.beta_turn2 = float(beta_turn1), float(beta_turn2)
            if want_ref:
                from peft import PeftModel

                if not isinstance(self.model, PeftModel):
                    attach_reference(self, ref_model if ref_model is not None else kwargs["model"])
                self.beta = 1.0  # a flag for TRL: compute ref_per_token_logps; the weights are ours
            self._capture = False
            self._captured = None

        # --- per-token advantages from the per-turn rewards
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            dev = out["completion_ids"].device
            r1 = torch.tensor([float(x["r1"]) for x in inputs], device=dev)
            r2 = torch.tensor([float(x["r2"]) for x in inputs], device=dev)
            changed = torch.tensor([float(x["changed"]) for x in inputs], device=dev)
            all_r1, all_r2 = self.accelerator.gather(r1), self.accelerator.gather(r2)
            mode = "train" if self.model.training else "eval"
            ng = self.num_generations if mode == "train" else self.num_generations_eval
            ret1, ret2 = turn_returns(all_r1, all_r2, self.stage, self.alpha)
            if not self.credit_turn1:  # attempt 2 alone is trained; attempt-1 tokens keep only their KL term
                ret1 = torch.zeros_like(ret1)
            a1 = group_advantages(ret1, ng, self.scale_rewards)
            a2 = group_advantages(ret2, ng, self.scale_rewards)
            sl = slice(self.accelerator.process_index * len(inputs), (self.accelerator.process_index + 1) * len(inputs))
            width = out["completion_ids"].shape[1]
            turns = torch.zeros((len(inputs), width), dtype=torch.long, device=dev)
            for i, x in enumerate(inputs):
                t = torch.as_tensor(x["turn_of_token"][:width], dtype=torch.long)
                turns[i, :len(t)] = t
            out["turn_of_token"] = turns
            out["advantages"] = token_advantages(turns, a1[sl], a2[sl])
            m = self._metrics[mode]
            all_changed = self.accelerator.gather(changed)
            m["score/acc_t1"].append(all_r1.mean().item())
            m["score/acc_t2"].append(all_r2.mean().item())
            m["score/delta"].append((all_r2 - all_r1).mean().item())
            m["score/i2c"].append(((1 - all_r1) * all_r2).mean().item())
            m["score/c2i"].append((all_r1 * (1 - all_r2)).mean().item())
            m["score/changed"].append(all_changed.mean().item())
            m["score/credit_turn1"].append(ret1.mean().item())
            m["score/credit_turn2"].append(ret2.mean().item())
            return out

        # --- per-turn KL: capture the policy log-probs of TRL's loss forward pass, add our KL term
        def _get_per_token_logps_and_entropies(self, *args, **kwargs):
            res = super()._get_per_token_logps_and_entropies(*args, **kwargs)
            if self._capture:
                self._captured = res[0]
            return res

        def _compute_loss(self, model, inputs):
            flag, self.beta = self.beta, 0.0
            self._capture = True
            try:
                loss = super()._compute_loss(model, inputs)
            finally:
                self.beta, self._capture = flag, False
            if flag == 0.0:
                return loss
            logps, ref = self._captured, inputs["ref_per_token_logps"]
            self._captured = None
            mask = inputs["completion_mask"] * inputs.get("tool_mask", torch.ones_like(inputs["completion_mask"]))
            turns = inputs["turn_of_token"]
            betas = torch.where(turns == 1, self.beta_turn1, torch.where(turns == 2, self.beta_turn2, 0.0))
            kl = torch.exp(ref - logps) - (ref - logps) - 1
            kl_loss = ((betas * kl * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
            mode = "train" if self.model.training else "eval"
            if mode == "train":
                kl_loss = kl_loss / self.current_gradient_accumulation_steps
            for t in (1, 2):
                sel = (turns == t) & mask.bool()
                if sel.any():
                    self._metrics[mode][f"kl/turn{t}"].append(
                        self.accelerator.gather(kl.detach()[sel].mean()).nanmean().item())
            return loss + kl_loss

    return SCoReTrainer
