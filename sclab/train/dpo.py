"""Preference-based self-correction training: pair builders and a thin wrapper over TRL's `DPOTrainer`.

Both builders read the records table of `sclab.rollout.run_episodes` (like the SFT builders of
`sclab.train.data`) and return `(dataset, counts)`: a `datasets.Dataset` in TRL's conversational
preference format, one example a dict

    {"prompt": [question, attempt 1, retry turn], "chosen": [assistant message],
     "rejected": [assistant message], "kind": str, "problem_id": str}

(all message lists), and a flat dict of how many pairs of each kind were built and were
available. `n=` caps the total; a builder is a deterministic function of its inputs and `seed`.
Attempts come from the distinct first-turn samples (as in `cct_sft`).

- `rise_pairs`: RISE (Qu et al., "Recursive Introspection: Teaching Language Model Agents How to
  Self-Improve", arXiv 2407.18219), here in its error-injected self-editing form: the model's own
  correct first attempt gets an injected error and becomes attempt 1 of the prompt; chosen = the
  original correct attempt, rejected = the injected wrong attempt repeated ("injected"); plus the
  model's natural wrong attempts, chosen = a right sample of the problem, rejected = the wrong
  attempt repeated ("natural").
- `scl_pairs`: self-correction preference pairs: after a right attempt 1, keeping it is preferred
  over a wrong attempt (no c->i degradation, "keep"); after a wrong attempt 1, a right attempt is
  preferred over a wrong one, the copy included ("fix"); balanced half/half like `cct_sft`.

`dpo(model, tok, ds)` trains a deep copy with DPO (Rafailov et al., arXiv 2305.18290) against the
frozen starting model. TRL tokenises the prompt (with the generation prompt) and prompt+chosen /
prompt+rejected with the chat template and puts the loss on the completion tokens only, so the
question, attempt 1 and the retry user turn are context, never trained.

    >>> from sclab.train.dpo import dpo, scl_pairs
    >>> # ds, counts = scl_pairs(records, problems, task, retry_message="again", n=200)
    >>> # tuned, stats = dpo(model, tok, ds, lr=1e-5); stats["reward_accuracy"]
"""
from __future__ import annotations

import copy
import math
import tempfile
import time
from typing import Callable, Sequence

import numpy as np

from sclab.rollout import first_turn
from sclab.tasks.base import Problem, Task
from sclab.train.data import (_check_n, _critique_pairs, _first_attempts, _retry, _take, group_by_problem,
                              pair_within_problem)
from sclab.train.trl_glue import common_args, finish_trainer, lora_config, tag_tuned, unpatch_forward

COLUMNS = ["prompt", "chosen", "rejected", "kind", "problem_id"]


# ---------------------------------------------------------------- error injection

def _injector(task: Task, inject) -> tuple[Callable | None, str]:
    """The injection function and its name for counts: "custom" (`inject`), the task's own
    (`Task.inject_error`, named by `Task.error_injector`: "toy" on the toy world) or "none"."""
    if inject is not None:
        if not callable(inject):
            raise ValueError(f"inject must be None or a function (text, rng) -> str | None, got {inject!r}")
        return inject, "custom"
    if task.error_injector:
        return task.inject_error, task.error_injector
    return None, "none"


# ---------------------------------------------------------------- builders

def _pair(kind: str, problem: Problem, task: Task, a1: str, retry: list[dict], chosen: str, rejected: str) -> dict:
    prompt = first_turn(problem, task) + [{"role": "assistant", "content": a1}] + retry
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "kind": kind, "problem_id": problem.id}


def _finish_pairs(examples: list[dict], rng: np.random.Generator, counts: dict):
    from datasets import Dataset

    examples = [examples[i] for i in rng.permutation(len(examples))]
    counts["total"] = len(examples)
    counts["problems"] = len({e["problem_id"] for e in examples})
    if not examples:
        return Dataset.from_dict({c: [] for c in COLUMNS}), counts
    return Dataset.from_list(examples), counts


def rise_pairs(records, problems: Sequence[Problem], task: Task, retry_message, n: int | None = None,
               seed: int = 0, inject: Callable | None = None):
    """RISE-style preference pairs (arXiv 2407.18219, error-injected self-editing).

    injected: each distinct correct first attempt with an error injected (`inject(text, rng)`, by
      default the task's own `Task.inject_error`: `sclab.toy.world.inject_toy_error` on the toy
      world) is attempt 1 of the prompt [question, injected attempt, retry]; chosen = the
      original correct attempt, rejected = the injected attempt repeated. Injections that fail
      (None) or that the grader still marks right are skipped and counted (`injection_failed`).
    natural: each distinct wrong first attempt is attempt 1; chosen = a right sample of that
      problem (a seeded choice), rejected = the wrong attempt repeated; wrong attempts of a
      problem without a right sample are counted (`wrong_without_right_sample`).

    For a task without an injector (`Task.error_injector == ""`) and no `inject`, only natural
    pairs are built (counts["injection"] == "none"; else the task's injector, e.g. "toy", or
    "custom"). `n` caps the total, sampled uniformly over both kinds (no balancing: injected
    pairs exist only where natural ones are missing, and vice versa)."""
    _check_n(n)
    retry = _retry(retry_message)
    injector, how = _injector(task, inject)
    rng = np.random.default_rng(seed)
    by_id, right, wrong = _first_attempts(records, problems)
    injected, failed = [], 0
    if injector is not None:
        for pid, good in right:
            bad = injector(good, rng)
            if not isinstance(bad, str) or bad == good or task.grade(by_id[pid], bad).correct:
                failed += 1
                continue
            injected.append((pid, bad, good, bad))
    pairs, skipped = _critique_pairs(right, wrong, rng)
    pools = {"injected": injected, "natural": [(pid, bad, good, bad) for pid, bad, good in pairs]}
    picked = _take(pools, n, rng, balance=False)
    examples = [_pair(kind, by_id[pid], task, a1, retry(by_id[pid]), ch, rej)
                for kind, items in picked.items() for pid, a1, ch, rej in items]
    counts = {"injected": len(picked["injected"]), "natural": len(picked["natural"]),
              "available_injected": len(injected), "available_natural": len(pairs),
              "injection": how, "injection_failed": failed, "wrong_without_right_sample": skipped}
    return _finish_pairs(examples, rng, counts)


def scl_pairs(records, problems: Sequence[Problem], task: Task, retry_message, n: int | None = None,
              seed: int = 0, balance: bool = True):
    """Self-correction preference pairs from the model's own first attempts; prompt
    [question, attempt 1, retry].

    keep: attempt 1 right (each distinct right attempt); chosen = attempt 1 again (keeping the
      right answer), rejected = a wrong attempt of the same problem (a seeded choice among its
      distinct wrong first attempts): the c->i degradation is dispreferred. Right attempts of a
      problem without a wrong sample are counted (`right_without_wrong_sample`).
    fix: attempt 1 wrong (each distinct wrong attempt); chosen = a right attempt of the problem,
      rejected = a wrong attempt of the problem (a seeded choice among its distinct wrong
      attempts, attempt 1 itself - the copy - included). Counted as in `cct_sft`.
    Balanced half/half (see `sclab.train.data._take`; n=None takes min of both pools)."""
    _check_n(n)
    retry = _retry(retry_message)
    rng = np.random.default_rng(seed)
    by_id, right, wrong = _first_attempts(records, problems)
    wrong_of = group_by_problem(wrong)
    keep, no_wrong = pair_within_problem(right, wrong, rng)
    keep = [(pid, good, good, bad) for pid, good, bad in keep]
    pairs, no_right = _critique_pairs(right, wrong, rng)
    fix = [(pid, bad, good, wrong_of[pid][int(rng.integers(len(wrong_of[pid])))]) for pid, bad, good in pairs]
    pools = {"keep": keep, "fix": fix}
    picked = _take(pools, n, rng, balance)
    examples = [_pair(kind, by_id[pid], task, a1, retry(by_id[pid]), ch, rej)
                for kind, items in picked.items() for pid, a1, ch, rej in items]
    counts = {"keep": len(picked["keep"]), "fix": len(picked["fix"]),
              "available_keep": len(keep), "available_fix": len(fix),
              "right_without_wrong_sample": no_wrong, "wrong_without_right_sample": no_right}
    return _finish_pairs(examples, rng, counts)


PAIR_BUILDERS = {"rise": rise_pairs, "scl": scl_pairs}


# ---------------------------------------------------------------- training

def _as_pairs(dataset):
    from datasets import Dataset

    if isinstance(dataset, tuple):
        raise TypeError("dpo() takes the dataset, not the (dataset, counts) pair a builder returns: "
                        "ds, counts = scl_pairs(...); dpo(model, tok, ds)")
    if isinstance(dataset, list):
        dataset = Dataset.from_list(dataset) if dataset else Dataset.from_dict({c: [] for c in COLUMNS})
    cols = set(dataset.column_names)
    if not {"prompt", "chosen", "rejected"} <= cols:
        raise ValueError(f"dpo() needs a preference dataset with prompt/chosen/rejected columns (rise_pairs, "
                         f"scl_pairs); got columns {sorted(cols)}")
    if len(dataset) == 0:
        raise ValueError("dpo(): the dataset is empty (check the builder's counts)")
    return dataset


def dpo_trainer(model, tokenizer, dataset, *, epochs: float = 1, lr: float = 1e-5, beta: float = 0.1,
                batch_size: int = 8, lora: bool | dict | None = None, seed: int = 0, max_steps: int = -1,
                output_dir: str | None = None, progress: bool = True, max_length: int | None = None,
                inplace: bool = False, **config):
    """The configured `trl.DPOTrainer` that `dpo` runs (for inspecting batches without training).

    The reference is the frozen starting model: a deep copy of `model` (full fine-tuning; TRL
    would otherwise reload it from `config._name_or_path`), or, with LoRA, the same weights with
    the adapter disabled. `config` overrides any `DPOConfig` field (e.g. loss_type="ipo",
    precompute_ref_log_probs=True, gradient_checkpointing=True on a GPU)."""
    dataset = _as_pairs(dataset)  # before the heavy imports: a wrong dataset fails fast

    from accelerate.utils import is_peft_model
    from trl import DPOConfig, DPOTrainer

    # the frozen start: with a new LoRA adapter TRL disables it, with an existing one it keeps a
    # frozen copy of it (adapter "ref"); otherwise a deep copy of the model
    ref = None if lora or is_peft_model(model) else copy.deepcopy(model)
    if not inplace:
        model = copy.deepcopy(model)  # the caller keeps the base model (get_peft_model also edits in place)
    if ref is not None:
        ref.eval()
        for p in ref.parameters():
            p.requires_grad_(False)
    tmp = None
    if output_dir is None:
        tmp = output_dir = tempfile.mkdtemp(prefix="sclab-dpo-")
    # common_args also turns off DPOConfig's defaults bf16=True and gradient_checkpointing=True
    args = common_args(
        output_dir, progress, num_train_epochs=epochs, learning_rate=lr, beta=beta,
        per_device_train_batch_size=batch_size, max_steps=max_steps, seed=seed, data_seed=seed,
        max_length=max_length,           # None: no truncation (a cut completion biases its log-ratio)
        precompute_ref_log_probs=False,  # the reference stays in memory (a copy; none with LoRA)
    )
    unknown = [k for k in config if k not in DPOConfig.__dataclass_fields__]
    if unknown:
        raise TypeError(f"dpo(): unknown DPOConfig field(s) {unknown}")
    args.update(config)
    trainer = DPOTrainer(model=model, ref_model=ref, args=DPOConfig(**args), train_dataset=dataset,
                         processing_class=tokenizer, peft_config=lora_config(lora))
    return finish_trainer(trainer, tmp, "dpo", progress)


def _logged(history: list[dict], key: str) -> list[float]:
    return [float(h[key]) for h in history if key in h]


def dpo(model, tokenizer, dataset, *, epochs: float = 1, lr: float = 1e-5, beta: float = 0.1, batch_size: int = 8,
        lora: bool | dict | None = None, seed: int = 0, max_steps: int = -1, output_dir: str | None = None,
        progress: bool = True, max_length: int | None = None, inplace: bool = False, **config):
    """DPO on a prompt/chosen/rejected dataset (`rise_pairs`, `scl_pairs`); returns (tuned_model, stats).

    Trains a deep copy (inplace=False) against the frozen starting model, sigmoid loss with
    `beta`. lora: None/False (full fine-tuning), True (LoRA r=8 on q/k/v/o_proj) or a dict of
    `peft.LoraConfig` overrides; the tuned model is then a `PeftModel`. output_dir: if given,
    the tuned model (or adapter) is saved there. lr default 1e-5: DPO rates sit ~10x below SFT
    ones (TRL's default is 1e-6 for full fine-tuning of LLMs); the toy model moves visibly at 1e-4.
    max_length None: no truncation.

    stats: train_loss (mean over steps), steps, wall_s, examples, trainable_params,
    reward_accuracy / reward_margin (the last logged values: the share of pairs whose implicit
    reward beta*log(pi/pi_ref) ranks chosen above rejected, and the mean gap, on the training
    batches of the last `logging_steps` steps, each measured before that step's update),
    reward_accuracy_mean / reward_margin_mean (over all logged steps), log_history."""
    trainer = dpo_trainer(model, tokenizer, dataset, epochs=epochs, lr=lr, beta=beta, batch_size=batch_size,
                          lora=lora, seed=seed, max_steps=max_steps, output_dir=output_dir, progress=progress,
                          max_length=max_length, inplace=inplace, **config)
    t0 = time.time()
    out = trainer.train()
    wall = time.time() - t0
    tuned = trainer.model
    unpatch_forward(tuned)
    if "ref" in getattr(tuned, "peft_config", {}) and "ref" not in getattr(model, "peft_config", {}):
        tuned.delete_adapter("ref")  # TRL's frozen copy of an existing adapter, the reference: not part of the result
    tuned.eval()
    if trainer.sclab_keep_output:
        trainer.save_model(output_dir)
    tag_tuned(tuned, model, "dpo", {"epochs": epochs, "lr": lr, "beta": beta, "batch_size": batch_size, "lora": lora,
                                    "seed": seed, "max_steps": max_steps, "max_length": max_length, "config": config,
                                    "data": [trainer.train_dataset[k] for k in ("prompt_ids", "chosen_ids",
                                                                                "rejected_ids")]})
    history = list(trainer.state.log_history)
    acc, margin = _logged(history, "rewards/accuracies"), _logged(history, "rewards/margins")
    stats = {"train_loss": float(out.training_loss), "steps": int(trainer.state.global_step), "wall_s": wall,
             "examples": len(trainer.train_dataset),
             "trainable_params": sum(p.numel() for p in tuned.parameters() if p.requires_grad),
             "reward_accuracy": acc[-1] if acc else float("nan"),
             "reward_margin": margin[-1] if margin else float("nan"),
             "reward_accuracy_mean": float(np.mean(acc)) if acc else float("nan"),
             "reward_margin_mean": float(np.mean(margin)) if margin else float("nan"),
             "log_history": history}
    if not math.isfinite(stats["train_loss"]):
        raise FloatingPointError(f"dpo(): the training loss is {stats['train_loss']} (lower lr?)")
    return tuned, stats
