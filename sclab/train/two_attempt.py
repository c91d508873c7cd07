"""The two-attempt rollout of SCoRe (Kumar et al., arXiv 2409.12917): TRL `GRPOTrainer`'s `rollout_func`.

One rollout is two attempts in one sequence: attempt 1, the second-turn instruction (a strategy
of `sclab.strategies`, injected by the environment), attempt 2. `TwoAttemptRollout` samples both
attempts with the current policy, masks the injected turn out of the loss (`env_mask`), and
passes the per-turn correctness r1, r2 to the reward functions as separate keys (never parsed
back out of the joined completion text); `sclab.train.score` trains on them.

    >>> from sclab.train.two_attempt import answer_changed
    >>> from sclab.tasks import Grade
    >>> answer_changed(Grade(False, "3", "toy-final"), Grade(True, "5", "toy-final"))
    True
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from sclab.generate import SamplingParams, row_seed
from sclab.rollout import first_turn
from sclab.strategies import get_strategy
from sclab.tasks.base import Grade, Problem, Task
from sclab.train.trl_glue import chat_ids


def answer_changed(first: Grade, second: Grade) -> bool:
    """Attempt 2's extracted answer differs from attempt 1's (SCoRe's collapse diagnostic: a
    policy that learns never to change its answer cannot correct); an extraction failure is an
    answer of its own (None)."""
    return first.extracted != second.extracted


def injected_ids(tokenizer, conversation: list[dict], attempt1: str, user_turn: str, eos_ids: Sequence[int]) -> list[int]:
    """The tokens between attempt 1's end-of-turn token and attempt 2: the rest of the chat
    template's assistant turn, the user's instruction and the assistant header.

    Computed by rendering the conversation with and without the instruction (so any chat
    template works) and keeping what follows attempt 1's end-of-turn token."""
    upto = chat_ids(tokenizer, conversation + [{"role": "assistant", "content": attempt1}])
    full = chat_ids(tokenizer, conversation + [{"role": "assistant", "content": attempt1},
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
        if not strat.static or len(strat.messages(task.dialect)) != 1:
            raise ValueError(f"strategy {strategy!r}: two-attempt RL needs a one-message second turn that depends on "
                             f"the problem alone (no gold label, critic or early stop; e.g. score-instruction, retry, "
                             f"cct-reask)")
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
        ctx1 = [chat_ids(tok, c, add_generation_prompt=True) for c in convs]
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
        out["changed"] = [float(answer_changed(a, b)) for a, b in zip(grades1, grades2)]
        out["attempt2"] = texts2
        return out


def reward_turn1(completions, r1, **kwargs) -> list[float]:
    """Attempt 1's correctness, as the rollout graded it (raw, unshaped)."""
    return [float(x) for x in r1]


def reward_turn2(completions, r2, **kwargs) -> list[float]:
    """Attempt 2's correctness, as the rollout graded it (raw, unshaped)."""
    return [float(x) for x in r2]
