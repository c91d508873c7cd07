"""What every sclab wrapper of a TRL trainer shares (`sft`, `dpo`, `score`): one home for the glue.

TRL's trainers are used as they are (STYLE.md: no forks); the few things sclab adds around
them live here: the CPU-safe `TrainingArguments` fields, the LoRA config (PEFT), finishing a
trainer (quiet logs, nothing-to-train errors, temporary output dirs), undoing TRL's per-instance
`forward` patch, a frozen KL reference for GRPO, a cache name for tuned models, chat-template
token ids, and the filters for the named warnings that are known to be harmless.

    >>> from sclab.train.trl_glue import lora_config
    >>> lora_config(True).r, lora_config({"r": 4}).r, lora_config(False)
    (8, 4, None)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import warnings
import weakref

LORA_DEFAULTS = dict(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])  # Llama attention projections

# (message regex, category, why it is harmless): the only warnings sclab's TRL runs silence, by name.
# Measured: a SCoRe stage II and a LoRA single-turn run, SFT and DPO (full and LoRA) on the toy
# model with every warning shown emitted this one and nothing else.
HARMLESS_WARNINGS = [
    (r"You are using 'rollout_func', which is an experimental feature", UserWarning,
     "TRL 1.16 marks `rollout_func` experimental; sclab pins trl 1.16 and its two-attempt rollout is tested "
     "against that API (tests/smoke/test_score_rl.py)"),
]


@contextlib.contextmanager
def quiet():
    """The warnings of `HARMLESS_WARNINGS` off (each by message and category), all others shown."""
    with warnings.catch_warnings():
        for message, category, _why in HARMLESS_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def lora_config(lora):
    """None (full fine-tuning), or a `peft.LoraConfig` from True (the defaults) or a dict of overrides."""
    if not lora:
        return None
    from peft import LoraConfig

    return LoraConfig(**{**LORA_DEFAULTS, **(lora if isinstance(lora, dict) else {})})


def tag_tuned(tuned, base_model, kind: str, run: dict) -> None:
    """Give a tuned model its own name for the generation cache (`sclab.models.fingerprint` keys big
    models on their name), so its samples are never served from the base model's cache."""
    base = getattr(base_model, "sclab_spec", None) or getattr(base_model, "name_or_path", "") or type(base_model).__name__
    blob = json.dumps({"base": str(base), **run}, sort_keys=True, default=str)
    tuned.sclab_spec = f"{base}+{kind}[{hashlib.sha256(blob.encode()).hexdigest()[:12]}]"


def common_args(output_dir: str, progress: bool, **fields) -> dict:
    """The TrainingArguments fields every sclab wrapper of a TRL trainer shares, plus `fields`."""
    import torch

    cuda = torch.cuda.is_available()
    return dict(
        output_dir=output_dir, use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(), fp16=False,  # no mixed precision on CPU
        gradient_checkpointing=False,    # small models: recomputation costs more time than it saves memory
        report_to="none", save_strategy="no", eval_strategy="no", dataloader_num_workers=0,
        logging_steps=5, disable_tqdm=not progress, **fields)


def finish_trainer(trainer, tmp: str | None, name: str, progress: bool):
    """Quiet without progress bars, refuse a model with nothing to train, delete a temporary output dir
    with the trainer; `trainer.sclab_keep_output` says whether the caller asked for the output dir."""
    if not progress:  # without tqdm, transformers prints every log dict; progress=False means quiet
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    if not any(p.requires_grad for p in trainer.model.parameters()):
        raise ValueError(f"{name}(): the model has no trainable parameters (a PeftModel loaded for inference? "
                         "merge it first, or pass lora=...)")
    if tmp is not None:
        weakref.finalize(trainer, shutil.rmtree, tmp, True)
    trainer.sclab_keep_output = tmp is None
    return trainer


def unpatch_forward(model) -> None:
    """Drop the instance-level `forward` that TRL's DPO and GRPO trainers install (the fused LM
    head): it closes over the bound forward of this very object, so a deep copy of the tuned model
    (a later training stage, or `sft()`/`dpo()` on it) would otherwise generate with - and train -
    the original's weights."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for m in {id(model): model, id(base): base}.values():
        m.__dict__.pop("forward", None)
        m.__dict__.pop("_original_forward", None)


def attach_reference(trainer, ref_model) -> None:
    """Give a `GRPOTrainer` built with beta = 0 its KL reference: a frozen deep copy of `ref_model`
    with TRL's fused LM head, prepared as TRL prepares the reference it builds itself. With beta != 0
    TRL 1.16 would load the reference from the policy's config path (the shipped or hub weights),
    which is not the starting model when that was tuned first (SCoRe's stage II, RL after SFT)."""
    import copy

    from trl.trainer.utils import add_fused_lm_head

    ref = copy.deepcopy(ref_model).eval()
    unpatch_forward(ref)  # a copy of a model TRL trained before would run the original's weights
    for p in ref.parameters():
        p.requires_grad_(False)
    add_fused_lm_head(ref, temperature=trainer.temperature, cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32)
    trainer.ref_model = trainer.accelerator.prepare_model(ref, evaluation_mode=True)


def chat_ids(tokenizer, messages, add_generation_prompt: bool = False) -> list[int]:
    """The token ids of `messages` rendered with the tokenizer's chat template."""
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        add_generation_prompt=add_generation_prompt)
    return list(enc["input_ids"])
