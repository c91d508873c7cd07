"""Training: data builders that turn records into SFT sets, and thin wrappers over TRL's trainers.

`sclab.train.data` builds prompt/completion datasets from the records table (vanilla SFT, CCT
and PAM after arXiv 2412.19513 / 2401.07301, Pair-SFT and STaR as the SCoRe baselines of arXiv
2409.12917); `sclab.train.sft` fine-tunes on them with TRL's `SFTTrainer` (LoRA via PEFT).

    >>> from sclab.train import cct_sft, sft
    >>> # ds, counts = cct_sft(records, problems, task, "again", n=200); tuned, stats = sft(model, tok, ds)
"""
from sclab.train.data import BUILDERS, cct_sft, pair_sft, star_sft, vanilla_sft
from sclab.train.sft import sft, sft_trainer, tokenize_turns

__all__ = ["BUILDERS", "cct_sft", "pair_sft", "star_sft", "vanilla_sft", "sft", "sft_trainer", "tokenize_turns"]
