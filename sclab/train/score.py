"""Multi-turn RL for self-correction: SCoRe stage I and II (Kumar et al., arXiv 2409.12917) on TRL.

One rollout is two attempts in one sequence: attempt 1, the second-turn instruction (a strategy
of `sclab.strategies`, injected by the environment), attempt 2. `TwoAttemptRollout`
(`sclab.train.two_attempt`) is TRL `GRPOTrainer`'s `rollout_func`: it samples both attempts with
the current policy, masks the injected turn out of the loss (`env_mask`), and passes the
per-turn correctness r1, r2 to the reward functions as separate keys (never parsed back out of
the joined completion text). This module holds the credit assignment (pure functions), the
held-out evaluation and the entry points; the trainer subclass is `sclab.train.score_grpo`.

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

import copy
import tempfile
import time
from typing import Sequence

import pandas as pd
import torch

from sclab.generate import SamplingParams
from sclab.rollout import first_turn
from sclab.tasks.base import Problem, Task
from sclab.train.trl_glue import finish_trainer, lora_config, quiet, tag_tuned, unpatch_forward
from sclab.train.two_attempt import TwoAttemptRollout, answer_changed, injected_ids, reward_turn1, reward_turn2

# and SCoReTrainer, built on first use (`__getattr__` below)
__all__ = ["STAGES", "turn_returns", "group_advantages", "token_advantages", "score_trainer", "score_train",
           "TwoAttemptRollout", "injected_ids", "reward_turn1", "reward_turn2", "answer_changed"]

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


# ---------------------------------------------------------------- the trainer (sclab.train.score_grpo)

def __getattr__(name):  # SCoReTrainer is built on first use: importing TRL costs seconds
    if name == "SCoReTrainer":
        from sclab.train.score_grpo import trainer_class

        return trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    from datasets import Dataset
    from trl import GRPOConfig

    from sclab.train.score_grpo import trainer_class

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
    with quiet():
        trainer = trainer_class()(
            model=policy, processing_class=tokenizer, reward_funcs=reward_funcs, args=GRPOConfig(**cfg),
            train_dataset=ds, rollout_func=rollout, peft_config=lora_config(lora), callbacks=callbacks,
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
    trainer = score_trainer(model, tokenizer, task, problems, stage=stage, lora=lora, progress=progress, **kwargs)
    with quiet():
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
