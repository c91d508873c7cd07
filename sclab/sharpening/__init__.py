"""Inference-time sharpening on one shared pool of samples (Huang, Block, Foster et al., arXiv 2412.01951).

Sharpening says a model's own likelihood is a better verifier than its sampler: keeping its
highest-likelihood answer concentrates mass on its mode, which helps where the mode is right and
cannot help where it is wrong. Six modules, one concern each:

- `pool`: n samples per problem drawn once (`Generator.generate`, cached) and rescored
  teacher-forced at T = 1 (`Generator.score`): `self_reward` = log π_base(y|x) summed, and the
  length-normalised `self_reward_mean` as an ablation; the greedy attempt; the toy problem
  classes (`gold_path_kind`, `greedy_kind`);
- `bon`: best-of-N by self-reward, computed exactly over the n samples (`pick_weights`), with
  maj@k over random k-subsets, pass@k, greedy and the T = 1 mean, against generations and tokens,
  with problem-bootstrap CIs, split by class (`curves`) and by the error kinds the picks carry
  (`pick_kinds`);
- `search`: step-level search, a beam over solution lines scored by self-reward alone (the toy
  analogue of AlphaLLM's step search, arXiv 2404.12253, without its critics), its steps growing
  IDS-style (arXiv 2502.05449), against best-of-N at equal generated tokens (`search_curves`);
- `coverage`: C_cov = E[1/π_base(y*|x)] from the teacher-forced gold solution, and where
  N ≪ 1/π(y*) (`undercovered`, `coverage_by_n`);
- `srgen`: SRGen (arXiv 2510.02919), sharpening inside one sample: where a token's entropy jumps
  above its recent window, a vector added to the last hidden state is optimised (context CE +
  entropy) before the token is drawn, with the uncorrected token under the same draw kept beside
  it (`srgen_generate`); on the toy, where it fires and what it fixes (`srgen_steps`,
  `trigger_stats`, `srgen_accuracy`);
- `amortise`: sharpening trained into the model: SFT on best-of-N picks (`sft_picks`,
  `sft_dataset`), GRPO with reward log π_base and a KL term (`rl_sharpen`, whose optimum is
  π_base^{1+1/β}), single-sample accuracy, entropy and base log-likelihood (`single_sample_stats`),
  and the fitted exponent of a line's result distribution (`line_marginals`, `fit_exponent`).

    >>> from sclab.sharpening import pick_weights
    >>> (pick_weights([-2.0, -1.0, -3.0, -1.5], 4) @ [1, 0, 0, 1]).item()  # N = n: the top reward, sample 1
    0.0

    >>> # samples = sample_pool(Generator("toy:arith"), task, problems, SamplingParams(n=16))
    >>> # curves(samples, greedy_pool(gen, task, problems), classes=problem_classes(problems, task.world))
"""
from sclab.sharpening.amortise import (GRPO_SETTINGS, SelfReward, fit_exponent, kl_coefficient, line_marginals,
                                       rl_sharpen, rl_sharpen_trainer, sft_dataset, sft_picks, single_sample_stats)
from sclab.sharpening.bon import METHODS, REWARDS, curves, default_ns, per_problem, pick_kinds, pick_weights, picks
from sclab.sharpening.coverage import coverage, coverage_by_n, gold_logprobs, p_in_sample, undercovered
from sclab.sharpening.pool import (PATH_KINDS, REWARD_COLUMNS, gold_path_kind, greedy_kind, greedy_pool,
                                   problem_classes, sample_pool)
from sclab.sharpening.srgen import (srgen_accuracy, srgen_completion, srgen_generate, srgen_records, srgen_steps,
                                    toy_next_token, trigger_positions, trigger_stats, trigger_threshold)
from sclab.sharpening.search import (SEARCH_COLUMNS, Found, Hyp, Searched, beam_search, dedupe, delimiter_counts,
                                     equal_token_bon, line_beam, prune, search_curves, search_records, segment_lines,
                                     settled)

__all__ = [
    "GRPO_SETTINGS", "SelfReward", "fit_exponent", "kl_coefficient", "line_marginals", "rl_sharpen",
    "rl_sharpen_trainer", "sft_dataset", "sft_picks", "single_sample_stats",
    "METHODS", "REWARDS", "curves", "default_ns", "per_problem", "pick_kinds", "pick_weights", "picks",
    "coverage", "coverage_by_n", "gold_logprobs", "p_in_sample", "undercovered",
    "PATH_KINDS", "REWARD_COLUMNS", "gold_path_kind", "greedy_kind", "greedy_pool", "problem_classes", "sample_pool",
    "srgen_accuracy", "srgen_completion", "srgen_generate", "srgen_records", "srgen_steps", "toy_next_token",
    "trigger_positions", "trigger_stats", "trigger_threshold",
    "SEARCH_COLUMNS", "Found", "Hyp", "Searched", "beam_search", "dedupe", "delimiter_counts", "equal_token_bon",
    "line_beam", "prune", "search_curves", "search_records", "segment_lines", "settled",
]
