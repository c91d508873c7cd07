"""Supervised fine-tuning: a thin wrapper over TRL's `SFTTrainer` with CPU-safe settings.

`sft(model, tokenizer, dataset)` trains a deep copy of `model` (the caller's model is never
changed, so a notebook can compare base and tuned) on a prompt/completion dataset from
`sclab.train.data`, with the loss on the completion only, optionally through a LoRA adapter
(PEFT, Hu et al. arXiv 2106.09685), and returns the tuned model and its training stats.

Multi-message completions (CCT without masking, arXiv 2412.19513: completion = attempt 1, the
retry user turn, attempt 2): TRL 1.16 accepts them (it renders prompt + completion with the chat
template) but trains on every completion token, the user's retry turn included. Masking the
user turn needs `assistant_only_loss=True`, which needs `{% generation %}` markers in the chat
template (TRL patches only the templates it knows; the toy template and many others have
none). So such datasets are pre-tokenised here (`tokenize_turns`: `input_ids` plus a
`completion_mask` that is 1 on the completion's assistant messages only) - a format TRL
documents and turns into labels itself (-100 where the mask is 0, with
`completion_only_loss=True`). Single-message completions go to TRL as they are.

    >>> from sclab.train.sft import sft
    >>> # tuned, stats = sft(model, tok, dataset, epochs=1, lora=True); stats["train_loss"]
"""
from __future__ import annotations

import copy
import math
import tempfile
import time

from sclab.train.trl_glue import chat_ids, common_args, finish_trainer, lora_config, tag_tuned


def tokenize_turns(tokenizer, prompt: list[dict], completion: list[dict]) -> dict:
    """`input_ids` of prompt + completion and a `completion_mask` that is 1 on the tokens of the
    completion's assistant messages (each message's content and end-of-turn token, as TRL's own
    prompt/completion tokenisation marks them) and 0 elsewhere (prompt, user turns, role tags).

    Each assistant message spans from the end of the conversation before it (rendered with the
    generation prompt) to the end of the conversation including it, so the chat template must
    render every prefix of the conversation as a prefix of the whole (most do)."""
    from trl.data_utils import common_prefix_length

    msgs = list(prompt) + list(completion)
    ids = chat_ids(tokenizer, msgs)
    mask = [0] * len(ids)
    for i in range(len(prompt), len(msgs)):
        if msgs[i]["role"] != "assistant":
            continue
        before = chat_ids(tokenizer, msgs[:i], add_generation_prompt=True)
        upto = chat_ids(tokenizer, msgs[: i + 1])
        if common_prefix_length(before, ids) < len(before) or common_prefix_length(upto, ids) < len(upto):
            raise ValueError("tokenize_turns: the chat template does not render a conversation's prefixes as prefixes "
                             "of the whole, so assistant turns cannot be located; train with mask_first=True "
                             "(one completion message) or use a prefix-preserving template")
        mask[len(before):len(upto)] = [1] * (len(upto) - len(before))
    return {"input_ids": ids, "completion_mask": mask}


def _as_dataset(dataset):
    from datasets import Dataset

    if isinstance(dataset, tuple):
        raise TypeError("sft() takes the dataset, not the (dataset, counts) pair a builder returns: "
                        "ds, counts = cct_sft(...); sft(model, tok, ds)")
    if isinstance(dataset, list):
        dataset = Dataset.from_list(dataset)
    cols = set(dataset.column_names)
    if not ({"prompt", "completion"} <= cols or "input_ids" in cols):
        raise ValueError(f"sft() needs a prompt/completion dataset (the loss goes on the completion only); "
                         f"got columns {sorted(cols)}")
    if len(dataset) == 0:
        raise ValueError("sft(): the dataset is empty (check the builder's counts)")
    return dataset


def _multi_turn(dataset) -> bool:
    return "completion" in dataset.column_names and any(
        isinstance(c, list) and any(m.get("role") != "assistant" for m in c) for c in dataset["completion"])


def sft_trainer(model, tokenizer, dataset, *, epochs: float = 1, lr: float = 1e-4, batch_size: int = 8,
                lora: bool | dict = False, seed: int = 0, max_steps: int = -1, output_dir: str | None = None,
                progress: bool = True, max_length: int | None = 2048, inplace: bool = False, **config):
    """The configured `trl.SFTTrainer` that `sft` runs (for inspecting batches without training).

    `config` overrides any `SFTConfig` field (e.g. gradient_checkpointing=True on a GPU)."""
    from trl import SFTConfig, SFTTrainer

    dataset = _as_dataset(dataset)
    if _multi_turn(dataset):  # see the module docstring: TRL would train on the user turns too
        dataset = dataset.map(lambda ex: tokenize_turns(tokenizer, ex["prompt"], ex["completion"]),
                              remove_columns=dataset.column_names, desc="Masking user turns")
    if not inplace:
        model = copy.deepcopy(model)  # the caller keeps the base model (get_peft_model also edits in place)
    tmp = None
    if output_dir is None:
        tmp = output_dir = tempfile.mkdtemp(prefix="sclab-sft-")
    args = common_args(
        output_dir, progress, num_train_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch_size,
        max_steps=max_steps, seed=seed, data_seed=seed,
        completion_only_loss=True,       # loss on the completion (the mask column of pre-tokenised data too)
        max_length=max_length, packing=False,
    )
    unknown = [k for k in config if k not in SFTConfig.__dataclass_fields__]
    if unknown:
        raise TypeError(f"sft(): unknown SFTConfig field(s) {unknown}")
    args.update(config)
    peft_config = lora_config(lora)
    trainer = SFTTrainer(model=model, args=SFTConfig(**args), train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    return finish_trainer(trainer, tmp, "sft", progress)


def sft(model, tokenizer, dataset, *, epochs: float = 1, lr: float = 1e-4, batch_size: int = 8,
        lora: bool | dict = False, seed: int = 0, max_steps: int = -1, output_dir: str | None = None,
        progress: bool = True, max_length: int | None = 2048, inplace: bool = False, **config):
    """Fine-tune on a prompt/completion dataset; returns (tuned_model, stats).

    Trains a deep copy (inplace=False, the default; pass inplace=True to save the memory of a
    copy of a big model). lora: False (full fine-tuning), True (LoRA r=8 on q/k/v/o_proj) or a
    dict of `peft.LoraConfig` overrides; the tuned model is then a `PeftModel` (adapter not
    merged). output_dir: if given, the tuned model (or adapter) is saved there, loadable with
    `sclab.models.load(spec, adapter=output_dir)` for LoRA. lr default 1e-4: a LoRA-scale rate,
    small for full fine-tuning of the toy model (pretrained at 2e-3).
    stats: train_loss (mean over steps), steps, wall_s, examples, trainable_params, log_history."""
    trainer = sft_trainer(model, tokenizer, dataset, epochs=epochs, lr=lr, batch_size=batch_size, lora=lora,
                          seed=seed, max_steps=max_steps, output_dir=output_dir, progress=progress,
                          max_length=max_length, inplace=inplace, **config)
    t0 = time.time()
    out = trainer.train()
    wall = time.time() - t0
    tuned = trainer.model
    tuned.eval()
    if trainer.sclab_keep_output:
        trainer.save_model(output_dir)
    tag_tuned(tuned, model, "sft", {"epochs": epochs, "lr": lr, "batch_size": batch_size, "lora": lora, "seed": seed,
                                    "max_steps": max_steps, "max_length": max_length, "config": config,
                                    "data": trainer.train_dataset["input_ids"]})
    stats = {"train_loss": float(out.training_loss), "steps": int(trainer.state.global_step),
             "wall_s": wall, "examples": len(trainer.train_dataset),
             "trainable_params": sum(p.numel() for p in tuned.parameters() if p.requires_grad),
             "log_history": list(trainer.state.log_history)}
    if not math.isfinite(stats["train_loss"]):
        raise FloatingPointError(f"sft(): the training loss is {stats['train_loss']} (lower lr?)")
    return tuned, stats
