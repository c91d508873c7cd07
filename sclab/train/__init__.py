"""Training: data builders that turn records into SFT sets and preference pairs, and thin wrappers over TRL's trainers.

`sclab.train.data` builds prompt/completion datasets from the records table (vanilla SFT, CCT
and PAM after arXiv 2412.19513 / 2401.07301, Pair-SFT and STaR as the SCoRe baselines of arXiv
2409.12917); `sclab.train.sft` fine-tunes on them with TRL's `SFTTrainer` (LoRA via PEFT).
`sclab.train.dpo` builds prompt/chosen/rejected pairs (RISE-style error injection after arXiv
2407.18219, self-correction keep/fix pairs) and trains on them with TRL's `DPOTrainer`;
`sclab.train.score` is SCoRe's multi-turn RL (arXiv 2409.12917) on TRL's `GRPOTrainer`, and
`sclab.train.trl_glue` what these wrappers of TRL share.

    >>> from sclab.train import cct_sft, sft
    >>> # ds, counts = cct_sft(records, problems, task, "again", n=200); tuned, stats = sft(model, tok, ds)
"""
from sclab.train.data import BUILDERS, cct_sft, pair_sft, star_sft, vanilla_sft
from sclab.train.dpo import PAIR_BUILDERS, dpo, dpo_trainer, rise_pairs, scl_pairs
from sclab.train.sft import sft, sft_trainer, tokenize_turns

__all__ = ["BUILDERS", "cct_sft", "pair_sft", "star_sft", "vanilla_sft", "sft", "sft_trainer", "tokenize_turns",
           "PAIR_BUILDERS", "rise_pairs", "scl_pairs", "dpo", "dpo_trainer"]
