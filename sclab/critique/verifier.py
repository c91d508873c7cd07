"""Verifiers as value heads on a copy of the policy: ORM, SORM, P(IK) and trained P(True).

One shape serves all four. A `Row` is a token sequence with the positions where a probability
is read and the targets it is trained on; a `ValueModel` is a decoder (a copy of the policy's,
or a fresh one of the same size: `init="random"`, the "other model" that has none of the
policy's weights) under a linear head, read at those positions through a sigmoid; a
`VerdictModel` is the whole causal LM, read as the log-odds of a yes token over a no token
(P(True): the model's own words judge the answer). Both train on binary cross-entropy with soft
targets (`train_value`), and, being causal, their output at a position depends only on the
tokens up to it, so an outcome model read at a solution's line ends scores its prefixes.

- ORM (GLoRe, arXiv 2402.10963): the final token of a policy sample, target = graded correct;
- SORM: every step end of a sample, target = whether any of K rollouts of the policy from that
  prefix reached the right answer (`sclab.critique.steps.rollout_labels`) - never the gold lines;
- P(IK) (Kadavath et al., arXiv 2207.05221): the last token of the question alone (the row never
  holds an answer), target = the model's empirical accuracy over its T = 1 samples;
- trained P(True): the verification turn's yes/no logits after (question, proposed answer).

Why not TRL: `RewardTrainer` fits pairwise Bradley-Terry preferences (chosen vs rejected) and
TRL 1.16 removed its step-level PRM trainer; these are pointwise labels at chosen positions, so a
small loop (a few lines of AdamW on a masked BCE) is the honest glue.

    >>> r = Row([3, 5, 7, 9], [1, 3], [0.0, 1.0]); r.positions
    [1, 3]
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

INITS = ("self", "random")


@dataclass
class Row:
    ids: list[int]            # the whole sequence the verifier reads
    positions: list[int]      # where it is read (indices into ids)
    targets: list[float]      # one target in [0, 1] per position (empty to predict only)

    def __post_init__(self):
        if not self.ids:
            raise ValueError("Row: ids is empty")
        if any(not 0 <= p < len(self.ids) for p in self.positions):
            raise ValueError(f"Row: positions must index into ids (0..{len(self.ids) - 1}), got {self.positions}")
        if self.targets and len(self.targets) != len(self.positions):
            raise ValueError(f"Row: {len(self.targets)} targets for {len(self.positions)} positions")
        if any(not 0.0 <= t <= 1.0 for t in self.targets):
            raise ValueError("Row: targets must lie in [0, 1]")


class ValueModel(torch.nn.Module):
    """A decoder and a linear head: one logit per token (read where a Row says)."""

    def __init__(self, backbone, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)   # starts at p = 1/2 everywhere
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask):
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(h.to(self.head.weight.dtype)).squeeze(-1)


class VerdictModel(torch.nn.Module):
    """A causal LM read as log p(yes) - log p(no) for the next token (P(True) in the model's words)."""

    def __init__(self, lm, yes_id: int, no_id: int):
        super().__init__()
        self.lm, self.yes_id, self.no_id = lm, int(yes_id), int(no_id)
        self.train(lm.training)   # a new Module is in train mode: wrapping a model in eval mode must not flip it

    def forward(self, input_ids, attention_mask):
        # the decoder's hidden states times the two verdict rows of the output layer, in float32: the
        # full-vocabulary logits at every position (B x T x 150k for Qwen) would not fit in memory, and
        # a bf16 difference of two large logits loses the verdict
        hidden = self.lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        head = self.lm.get_output_embeddings()
        rows = head.weight[[self.yes_id, self.no_id]].float()
        two = hidden.float() @ rows.T
        if getattr(head, "bias", None) is not None:
            two = two + head.bias[[self.yes_id, self.no_id]].float()
        cap = getattr(self.lm.config, "final_logit_softcapping", None)
        if cap:   # Gemma-style soft-capped logits: cap each logit, as the LM does, before the difference
            two = cap * torch.tanh(two / cap)
        return two[..., 0] - two[..., 1]


def value_model(model, init: str = "self", seed: int = 0, lora: bool = False) -> ValueModel:
    """A ValueModel on a copy of `model`'s decoder (`init="self"`) or on a freshly initialised
    decoder of the same configuration (`"random"`); the policy itself is never modified. `lora`
    trains LoRA adapters (PEFT) on the copy instead of all its weights (for billion-parameter
    policies)."""
    if init not in INITS:
        raise ValueError(f"value_model(init=...) must be one of {', '.join(INITS)}, got {init!r}")
    torch.manual_seed(seed)
    if init == "self":
        backbone = copy.deepcopy(model.get_decoder())
    else:
        from transformers import AutoModel

        backbone = AutoModel.from_config(model.config).to(model.device, dtype=model.dtype)
    if lora:
        from peft import LoraConfig, get_peft_model

        backbone = get_peft_model(backbone, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    return ValueModel(backbone, model.config.hidden_size).to(model.device)


def verdict_model(model, yes_id: int, no_id: int, lora: bool = False) -> VerdictModel:
    """A VerdictModel on a copy of `model` (the policy is never modified)."""
    lm = copy.deepcopy(model)
    if lora:
        from peft import LoraConfig, get_peft_model

        lm = get_peft_model(lm, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    return VerdictModel(lm, yes_id, no_id)


def _batch(rows: Sequence[Row], pad: int, device):
    width = max(len(r.ids) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):   # right padding: a causal model's outputs at real tokens are unchanged
        ids[i, :len(r.ids)] = torch.tensor(r.ids)
        mask[i, :len(r.ids)] = 1
    return ids.to(device), mask.to(device)


def _device(vm) -> torch.device:
    return next(vm.parameters()).device


def train_value(vm, rows: Sequence[Row], *, epochs: float = 2, steps: int | None = None, lr: float = 1e-3,
                batch_size: int = 32, seed: int = 0, pad_id: int = 0, progress: bool = True,
                desc: str = "training verifier") -> list[float]:
    """Fit `vm` by AdamW on the mean binary cross-entropy at every labelled position, the learning
    rate decaying linearly to 0, for `steps` optimiser steps (default: `epochs` passes over the
    rows); returns the loss of each step. Rows are shuffled with `seed` each pass."""
    rows = [r for r in rows if r.positions]
    if not rows or any(len(r.targets) != len(r.positions) for r in rows):
        raise ValueError("train_value: every row needs a target per position (and at least one labelled row)")
    if epochs <= 0 or lr <= 0 or batch_size < 1 or (steps is not None and steps < 1):
        raise ValueError(f"train_value: epochs and lr must be > 0, batch_size and steps >= 1, got epochs={epochs}, "
                         f"lr={lr}, batch_size={batch_size}, steps={steps}")
    rng = np.random.default_rng(seed)
    steps = steps or max(1, int(round(epochs * len(rows) / batch_size)))
    opt = torch.optim.AdamW([p for p in vm.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)   # linear decay to 0
    device = _device(vm)
    order: list[int] = []
    losses = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=desc, unit="step")
    vm.train()
    for _ in range(steps):
        if len(order) < batch_size:
            order += list(rng.permutation(len(rows)))
        pick, order = order[:batch_size], order[batch_size:]
        batch = [rows[i] for i in pick]
        ids, mask = _batch(batch, pad_id, device)
        logits = vm(ids, mask)
        r_idx = torch.tensor([i for i, r in enumerate(batch) for _ in r.positions], device=device)
        p_idx = torch.tensor([p for r in batch for p in r.positions], device=device)
        target = torch.tensor([t for r in batch for t in r.targets], device=device, dtype=logits.dtype)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[r_idx, p_idx], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    if bar:
        bar.close()
    vm.eval()
    return losses


@torch.no_grad()
def predict(vm, rows: Sequence[Row], *, batch_size: int = 64, pad_id: int = 0) -> list[np.ndarray]:
    """The verifier's probability at each row's positions (one array per row)."""
    was = vm.training
    vm.eval()
    device = _device(vm)
    out: list[np.ndarray | None] = [None] * len(rows)
    order = sorted(range(len(rows)), key=lambda j: -len(rows[j].ids))
    try:
        for b0 in range(0, len(order), batch_size):
            idx = order[b0:b0 + batch_size]
            ids, mask = _batch([rows[j] for j in idx], pad_id, device)
            probs = torch.sigmoid(vm(ids, mask).float()).cpu().numpy()
            for r, j in enumerate(idx):
                out[j] = probs[r, rows[j].positions]
    finally:
        vm.train(was)
    return out
