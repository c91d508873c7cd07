"""Multi-turn RL for self-correction: SCoRe stage I and II (Kumar et al., arXiv 2409.12917) on TRL.

One rollout is two attempts in one sequence: attempt 1, the second-turn instruction (a strategy
of `sclab.strategies`, injected by the environment), attempt 2. `TwoAttemptRollout` is TRL
`GRPOTrainer`'s `rollout_func`: it samples both attempts with the current policy, masks the
injected turn out of the loss (`env_mask`), and passes the per-turn correctness r1, r2 to the
reward functions as separate keys (never parsed back out of the joined completion text).

`SCoReTrainer` is `GRPOTrainer` with per-token credit and per-turn KL:

    stage      attempt-1 tokens are credited with   attempt-2 tokens with        KL weight (t1 / t2)
    "I"        r2                                   r2                           beta_turn1 (β2, strong) / beta_turn2
    "II"       r1 + r2                              r2 + α·(r2 − r1)             beta_turn1 / beta_turn2 (β1)
    "single"   r1 (one attempt, no second turn)     -                            beta_turn1

The shaping bonus α·(r2 − r1) belongs to attempt 2 only. Crediting it to attempt-1 tokens as
well gives them r1 + r2 + α(r2 − r1) = (1 − α)·r1 + (1 + α)·r2, which for α > 1 *rewards a
wrong first attempt*: a prototype's first-attempt accuracy fell from 64% to 9% that way while
Δ rose. Each turn's credit is normalised within its prompt group (GRPO's baseline) and the
advantages are per token, shape (B, T), which TRL's loss accepts.

    >>> from sclab.train.score import score_train
    >>> # stage1, log1 = score_train(base, tok, task, train_problems, stage="I", steps=60)
    >>> # stage2, log2 = score_train(stage1, tok, task, train_problems, stage="II", ref_model=base, steps=120)
"""
from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time
import warnings
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from sclab.generate import SamplingParams, row_seed
from sclab.rollout import first_turn
from sclab.strategies import get_strategy
from sclab.tasks.base import Problem, Task
from sclab.train.sft import _chat_ids

STAGES = ("I", "II", "single")


# ---------------------------------------------------------------- credit assignment (pure)

def turn_returns(r1, r2, stage: str, alpha: float = 0.0):
    """The credit of attempt-1 tokens and of attempt-2 tokens for rewards r1, r2 (arrays).

    Stage I maximises r(y2) (its KL keeps attempt 1 near the reference); stage II maximises
    r(y1) + r(y2) plus the bonus α·(r(y2) − r(y1)), which is attempt 2's alone; "single" is
    one-attempt RL on r(y1)."""
    r1, r2 = torch.as_tensor(r1, dtype=torch.float32), torch.as_tensor(r2, dtype=torch.float32)
    if stage == "I":
        return r2.clone(), r2.clone()
    if stage == "II":
        return r1 + r2, r2 + alpha * (r2 - r1)
    if stage == "single":
        return r1.clone(), torch.zeros_like(r1)
    raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")


def group_advantages(returns: torch.Tensor, num_generations: int, scale: str = "group") -> torch.Tensor:
    """GRPO's advantage: the return minus its prompt group's mean, over the group's std (scale
    'group'), the batch std ('batch') or unscaled ('none'), as TRL computes it."""
    g = returns.view(-1, num_generations)
    centred = (g - g.mean(dim=1, keepdim=True)).view(-1)
    if scale == "none":
        return centred
    if scale == "group":
        std = g.std(dim=1, keepdim=True).expand_as(g).reshape(-1) if num_generations > 1 else torch.zeros_like(returns)
    elif scale == "batch":
        std = returns.std().expand_as(returns) if returns.numel() > 1 else torch.zeros_like(returns)
    else:
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return centred / (std + 1e-4)


def token_advantages(turn_of_token: torch.Tensor, adv1: torch.Tensor, adv2: torch.Tensor) -> torch.Tensor:
    """(B, T) advantages: adv1 on attempt-1 tokens (turn 1), adv2 on attempt-2 tokens (turn 2), 0 elsewhere."""
    out = torch.zeros(turn_of_token.shape, dtype=torch.float32, device=turn_of_token.device)
    out = torch.where(turn_of_token == 1, adv1.to(out.device).unsqueeze(1), out)
    return torch.where(turn_of_token == 2, adv2.to(out.device).unsqueeze(1), out)


# ---------------------------------------------------------------- rollouts

def injected_ids(tokenizer, conversation: list[dict], attempt1: str, user_turn: str, eos_ids: Sequence[int]) -> list[int]:
    """The tokens between attempt 1's end-of-turn token and attempt 2: the rest of the chat
    template's assistant turn, the user's instruction and the assistant header.

    Computed by rendering the conversation with and without the instruction (so any chat
    template works) and keeping what follows attempt 1's end-of-turn token."""
    upto = _chat_ids(tokenizer, conversation + [{"role": "assistant", "content": attempt1}])
    full = _chat_ids(tokenizer, conversation + [{"role": "assistant", "content": attempt1},
                                                {"role": "user", "content": user_turn}], add_generation_prompt=True)
    if full[:len(upto)] != upto:
        raise ValueError("the chat template renders an earlier turn differently once a later turn follows; "
                         "two-attempt rollouts need a prefix-stable template")
    ends = [i for i, t in enumerate(upto) if t in set(eos_ids)]
    tail = upto[ends[-1] + 1:] if ends else []
    return tail + full[len(upto):]


class TwoAttemptRollout:
    """TRL `rollout_func`: attempt 1, the injected instruction, attempt 2 — one sequence per prompt entry.

    Returns TRL's required keys (prompt_ids, completion_ids, logprobs), `env_mask` (0 on injected
    tokens), and reward keys: `r1`, `r2` (per-turn correctness), `changed` (the extracted answer
    differs) and `turn_of_token` (1, 2, or 0 for injected tokens). With `second_turn=False` it is a
    one-attempt rollout (r2 = r1). Generation uses TRL's vLLM engine when the trainer has one, the
    `sclab` HF sampler (one seed per sample) otherwise."""

    def __init__(self, task: Task, problems: Sequence[Problem], strategy: str = "score-instruction", *,
                 second_turn: bool = True, max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 1.0,
                 seed: int = 0, batch_size: int = 128):
        strat = get_strategy(strategy)
        if len(strat.messages(task.dialect)) != 1 or strat.only_after_wrong or strat.stop_if:
            raise ValueError(f"strategy {strategy!r}: two-attempt RL needs a one-message second turn that does not "
                             f"use the gold label (e.g. score-instruction, retry, cct-reask)")
        self.task, self.strategy, self.second_turn = task, strategy, second_turn
        self.params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
        self.batch_size = batch_size
        self.by_prompt = {task.prompt(p): p for p in problems}
        self._message = lambda p: strat.turns(task, p)[0]
        self.calls = 0

    def problem_of(self, prompt) -> Problem:
        text = prompt[-1]["content"] if isinstance(prompt, list) else prompt
        if text not in self.by_prompt:
            raise KeyError(f"rollout prompt is not one of the rollout's problems: {text[:80]!r}")
        return self.by_prompt[text]

    def _sample(self, trainer, contexts: list[list[int]], seeds: list[int]):
        """(token ids, per-token log-probs) of one sample per context."""
        if getattr(trainer, "use_vllm", False):
            vg = trainer.vllm_generation
            budget, vg.max_completion_length = vg.max_completion_length, self.params.max_new_tokens  # one attempt
            try:
                _, comp, lps, _ = vg.generate(prompts=contexts, images=None, num_generations=1)
            finally:
                vg.max_completion_length = budget
            if lps is None:
                lps = [[0.0] * len(c) for c in comp]
            return [(list(c), [float(x[0]) if isinstance(x, (list, tuple)) else float(x) for x in lp])
                    for c, lp in zip(comp, lps)]
        from sclab.generate.hf import HFBackend

        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        model.eval()
        try:
            backend = HFBackend(model, trainer.processing_class, batch_size=self.batch_size)
            comps = backend.generate_rows(list(zip(contexts, seeds)), self.params, progress=False)
        finally:
            model.train(was_training)
        return [(c.token_ids, c.token_logprobs) for c in comps]

    def __call__(self, prompts: list, trainer) -> dict:
        tok = trainer.processing_class
        from sclab.generate.hf import eos_ids as turn_end_ids

        eos_ids = turn_end_ids(trainer.accelerator.unwrap_model(trainer.model), tok)
        problems = [self.problem_of(p) for p in prompts]
        seen: Counter = Counter()
        sample_ids = []
        for p in problems:  # GRPO repeats each prompt num_generations times: number the copies
            sample_ids.append(seen[p.id])
            seen[p.id] += 1
        call = self.calls
        self.calls += 1
        convs = [first_turn(p, self.task) for p in problems]
        ctx1 = [_chat_ids(tok, c, add_generation_prompt=True) for c in convs]
        seeds1 = [row_seed(self.params.seed, [call, 1, c], s) for c, s in zip(convs, sample_ids)]
        first = self._sample(trainer, ctx1, seeds1)
        texts1 = [tok.decode(ids, skip_special_tokens=True).strip() for ids, _ in first]
        grades1 = [self.task.grade(p, t) for p, t in zip(problems, texts1)]
        r1 = [float(g.correct) for g in grades1]
        out = {"prompt_ids": ctx1, "completion_ids": [], "logprobs": [], "env_mask": [], "turn_of_token": [],
               "r1": r1, "attempt1": texts1}
        if not self.second_turn:
            for ids, lps in first:
                out["completion_ids"].append(list(ids))
                out["logprobs"].append(list(lps))
                out["env_mask"].append([1] * len(ids))
                out["turn_of_token"].append([1] * len(ids))
            out.update(r2=list(r1), changed=[0.0] * len(r1), attempt2=list(texts1))
            return out
        joins, ctx2 = [], []
        for c, p, (ids, _), t1, x in zip(convs, problems, first, texts1, ctx1):
            closing = [] if ids and ids[-1] in eos_ids else [eos_ids[0]]  # a truncated attempt still ends its turn
            join = closing + injected_ids(tok, c, t1, self._message(p), eos_ids)
            joins.append(join)
            ctx2.append(x + list(ids) + join)
        seeds2 = [row_seed(self.params.seed, [call, 2, c], s) for c, s in zip(convs, sample_ids)]
        second = self._sample(trainer, ctx2, seeds2)
        texts2 = [tok.decode(ids, skip_special_tokens=True).strip() for ids, _ in second]
        grades2 = [self.task.grade(p, t) for p, t in zip(problems, texts2)]
        for (ids1, lp1), join, (ids2, lp2) in zip(first, joins, second):
            out["completion_ids"].append(list(ids1) + join + list(ids2))
            out["logprobs"].append(list(lp1) + [0.0] * len(join) + list(lp2))
            out["env_mask"].append([1] * len(ids1) + [0] * len(join) + [1] * len(ids2))
            out["turn_of_token"].append([1] * len(ids1) + [0] * len(join) + [2] * len(ids2))
        out["r2"] = [float(g.correct) for g in grades2]
        out["changed"] = [float(a.extracted != b.extracted) for a, b in zip(grades1, grades2)]
        out["attempt2"] = texts2
        return out


def reward_turn1(completions, r1, **kwargs) -> list[float]:
    """Attempt 1's correctness, as the rollout graded it (raw, unshaped)."""
    return [float(x) for x in r1]


def reward_turn2(completions, r2, **kwargs) -> list[float]:
    """Attempt 2's correctness, as the rollout graded it (raw, unshaped)."""
    return [float(x) for x in r2]


# ---------------------------------------------------------------- the trainer

@contextlib.contextmanager
def _quiet():
    """transformers' and TRL's per-run warnings off (experimental rollout_func, config notes), restored after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)


def _grpo_trainer_class():
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
                    from trl.trainer.utils import add_fused_lm_head

                    # the pristine model: a copy of the policy would carry TRL's patched forward already
                    ref = copy.deepcopy(ref_model if ref_model is not None else kwargs["model"]).eval()
                    for p in ref.parameters():
                        p.requires_grad_(False)
                    add_fused_lm_head(ref, temperature=self.temperature, cast_lm_head_to_fp32=config.cast_lm_head_to_fp32)
                    self.ref_model = self.accelerator.prepare_model(ref, evaluation_mode=True)
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


def __getattr__(name):  # SCoReTrainer is built on first use: importing TRL costs seconds
    if name == "SCoReTrainer":
        return _grpo_trainer_class()
    raise AttributeError(name)


# ---------------------------------------------------------------- held-out evaluation during training

class _EvalCallback:
    """Every `every` steps: two-attempt episodes of the current policy on held-out problems."""

    def __init__(self, tokenizer, task, problems, strategy, params, every):
        self.tokenizer, self.task, self.problems, self.strategy = tokenizer, task, problems, strategy
        self.params, self.every, self.rows = params, every, []

    def evaluate(self, model, step):
        from sclab.generate import Generator
        from sclab.metrics import answer_changed_rate, correction_metrics
        from sclab.rollout import run_episodes

        was = model.training
        model.eval()
        try:
            gen = Generator(model, self.tokenizer, cache=False, progress=False)
            df = run_episodes(gen, self.task, self.problems, strategy=self.strategy, params=self.params)
        finally:
            model.train(was)
        m = correction_metrics(df)
        self.rows.append({"step": step, "acc_t1": m["acc_t1"], "acc_t2": m["acc_t2"], "delta": m["delta"],
                          "delta_i2c": m["delta_i2c"], "delta_c2i": m["delta_c2i"],
                          "changed": answer_changed_rate(df)})

    def callback(self):
        from transformers import TrainerCallback

        outer = self

        class _CB(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kw):
                outer.evaluate(model, 0)

            def on_step_end(self, args, state, control, model=None, **kw):
                if state.global_step % outer.every == 0 or state.global_step == state.max_steps:
                    if not outer.rows or outer.rows[-1]["step"] != state.global_step:
                        outer.evaluate(model, state.global_step)

        return _CB()


# ---------------------------------------------------------------- the entry point

_SIGNATURE_DOC = """
    The reference of the KL terms is `ref_model` (default: the starting model); with `lora`
    it is the model with its adapter disabled (TRL's PEFT behaviour). Paper defaults (Table 5,
    MATH): alpha=10, stage I beta_turn1=0.1 (β2), stage II beta_turn1=beta_turn2=0.01 (β1), lr 5e-6."""


def score_trainer(model, tokenizer, task: Task, problems: Sequence[Problem], *, stage: str = "II",
                  strategy: str = "score-instruction", alpha: float = 10.0, beta_turn1: float = 0.1,
                  beta_turn2: float = 0.01, steps: int = 100, lr: float = 1e-5, prompts_per_step: int = 16,
                  num_generations: int = 4, temperature: float = 1.0, max_new_tokens: int = 256,
                  ref_model=None, lora=None, seed: int = 0, eval_problems: Sequence[Problem] | None = None,
                  eval_every: int = 20, eval_params: SamplingParams | None = None, use_vllm: bool = False,
                  credit_turn1: bool = True, progress: bool = True, **grpo_kwargs):
    """The configured `SCoReTrainer` that `score_train` runs, on a deep copy of `model` (for
    inspecting rollouts, masks and advantages without training). `grpo_kwargs` override any
    `GRPOConfig` field. credit_turn1=False trains attempt 2 alone (attempt-1 tokens get no
    policy-gradient credit, only their KL): an experiment on how much of attempt 2's training
    leaks into attempt 1 through the shared weights."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    for name, v in (("steps", steps), ("prompts_per_step", prompts_per_step), ("max_new_tokens", max_new_tokens)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if not isinstance(num_generations, int) or num_generations < 2:
        raise ValueError(f"num_generations must be an int >= 2 (GRPO's group baseline), got {num_generations!r}")
    if not problems:
        raise ValueError("score_train: no training problems given")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from trl import GRPOConfig

    from sclab.train.sft import _lora_config, finish_trainer

    rollout = TwoAttemptRollout(task, problems, strategy, second_turn=stage != "single", max_new_tokens=max_new_tokens,
                                temperature=temperature, seed=seed)
    ds = Dataset.from_list([{"prompt": first_turn(p, task), "problem_id": p.id} for p in problems])
    policy = copy.deepcopy(model)
    ref = ref_model if ref_model is not None else model
    out_dir = tempfile.mkdtemp(prefix="sclab-score-")
    cfg = dict(output_dir=out_dir, max_steps=steps, learning_rate=lr,
               per_device_train_batch_size=prompts_per_step * num_generations, num_generations=num_generations,
               temperature=temperature, max_completion_length=2 * max_new_tokens + 64, logging_steps=1,
               save_strategy="no", report_to="none", seed=seed, data_seed=seed, bf16=False, remove_unused_columns=False,
               disable_tqdm=not progress, use_vllm=use_vllm, loss_type="grpo", scale_rewards="group", num_iterations=1,
               gradient_accumulation_steps=1, lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0,
               log_completions=False, use_cpu=not torch.cuda.is_available())
    if use_vllm:
        cfg.update(vllm_mode="colocate", vllm_gpu_memory_utilization=0.3)  # one GPU shared with training
    unknown = [k for k in grpo_kwargs if k not in GRPOConfig.__dataclass_fields__]
    if unknown:
        raise TypeError(f"score_train(): unknown GRPOConfig field(s) {unknown}")
    cfg.update(grpo_kwargs)
    reward_funcs = [reward_turn1] if stage == "single" else [reward_turn1, reward_turn2]
    callbacks, evaluator = [], None
    if eval_problems:
        ep = eval_params or SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + 1)
        evaluator = _EvalCallback(tokenizer, task, list(eval_problems), strategy, ep, eval_every)
        callbacks.append(evaluator.callback())
    with _quiet():
        trainer = _grpo_trainer_class()(
            model=policy, processing_class=tokenizer, reward_funcs=reward_funcs, args=GRPOConfig(**cfg),
            train_dataset=ds, rollout_func=rollout, peft_config=_lora_config(lora), callbacks=callbacks,
            stage=stage, alpha=alpha if stage == "II" else 0.0, beta_turn1=beta_turn1,
            beta_turn2=beta_turn2 if stage != "single" else 0.0, ref_model=ref, credit_turn1=credit_turn1)
    finish_trainer(trainer, out_dir, "score_train", progress)
    trainer.sclab_evaluator = evaluator
    trainer.sclab_run = {**cfg, "output_dir": None, "alpha": alpha, "beta_turn1": beta_turn1, "beta_turn2": beta_turn2,
                         "strategy": strategy, "problems": [p.id for p in problems], "credit_turn1": credit_turn1,
                         "ref": getattr(ref, "sclab_spec", None)}
    return trainer


def score_train(model, tokenizer, task: Task, problems: Sequence[Problem], *, stage: str = "II", lora=None,
                progress: bool = True, **kwargs):
    """Train a copy of `model` with SCoRe stage I, stage II or single-turn RL; return (model, log).

    Keyword arguments are `score_trainer`'s: strategy (the second-turn instruction), alpha,
    beta_turn1, beta_turn2, steps, lr, prompts_per_step, num_generations, temperature,
    max_new_tokens, ref_model, seed, eval_problems, eval_every, eval_params, use_vllm,
    credit_turn1, and any GRPOConfig field.

    `log` has one row per optimizer step (TRL's logged metrics: the raw per-turn rewards
    `rewards/reward_turn{1,2}/mean`, on-policy `score/acc_t1|acc_t2|delta|i2c|c2i|changed`, the
    credits given to each turn, `kl/turn1|turn2`, loss) and, if `eval_problems` is given, the
    held-out evaluation every `eval_every` steps as `eval_*` columns (step 0 = the start).
    """

    from sclab.train.sft import tag_tuned, unpatch_forward

    trainer = score_trainer(model, tokenizer, task, problems, stage=stage, lora=lora, progress=progress, **kwargs)
    with _quiet():
        t0 = time.time()
        trainer.train()
        seconds = time.time() - t0
    trained = trainer.model
    unpatch_forward(trained)  # else a copy of it (the next stage) would generate with these weights
    if lora and hasattr(trained, "merge_and_unload"):
        trained = trained.merge_and_unload()
    trained.eval()
    tag_tuned(trained, model, f"score-{stage}", trainer.sclab_run)
    log = pd.DataFrame([r for r in trainer.state.log_history if "loss" in r or "score/acc_t1" in r])
    if trainer.sclab_evaluator is not None:
        ev = pd.DataFrame(trainer.sclab_evaluator.rows).add_prefix("eval_").rename(columns={"eval_step": "step"})
        log = ev.merge(log, on="step", how="outer").sort_values("step").reset_index(drop=True)
    log.attrs.update({k: trainer.sclab_run[k] for k in ("alpha", "beta_turn1", "beta_turn2", "strategy")},
                     stage=stage, steps=trainer.state.global_step, seconds=seconds)
    return trained, log


score_train.__doc__ += _SIGNATURE_DOC
