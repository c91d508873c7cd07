"""Attempts as verifier rows, step labels from policy rollouts, and refinement from a flagged step.

A sample is read as its prompt's tokens followed by the response's (`attempt_rows`); its step
ends are the response tokens holding the task's step delimiter (the toy's `;`, a math model's
newline; `sclab.sharpening.search.delimiter_counts`), its final position the last token.

- `rollout_labels`: GLoRe's SORM labels (arXiv 2402.10963): from every step end of a sample, K
  continuations by the policy at T = 1; the step is positive if any of them is graded correct
  (their mean, the Monte Carlo V^π, comes too). The grader sees only the completed texts: no
  label is read off the gold lines.
- `resume`: continue a sample from one of its step ends (the prefix kept, the rest the policy's):
  the toy's local refinement from the first step a verifier flags (`first_flag`).
- `pik_rows`: the question alone, for P(IK): the row holds no answer;
- `likelihood_steps`: the policy's own probability of each step, the untrained step verifier.

    >>> first_flag([0.9, 0.8, 0.3, 0.7], 0.5), first_flag([0.9, 0.8], 0.5)
    (2, None)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from sclab.critique.verifier import Row
from sclab.generate import Generator, SamplingParams, encode_conversation, text_completion_ids
from sclab.rollout import first_turn
from sclab.sharpening.search import delimiter_counts
from sclab.tasks.base import Problem, Task


@dataclass
class Attempted:
    """One sample as tokens: the prompt, the response, its step ends and its last position."""

    problem_id: str
    sample: int
    prompt: list[int]
    response: list[int]
    steps: list[int]          # absolute positions of the step-end tokens
    final: int                # absolute position of the last token

    @property
    def ids(self) -> list[int]:
        return self.prompt + self.response


def attempt_rows(generator: Generator, task: Task, problems: Sequence[Problem], samples: pd.DataFrame,
                 step_stop: str = ";") -> list[Attempted]:
    """`samples` (records with problem_id, sample and response) as token sequences after each
    problem's first turn, in the records' order."""
    tok = generator.tokenizer
    counts = delimiter_counts(tok, step_stop, len(tok)).numpy()
    by_id = {p.id: p for p in problems}
    missing = set(samples["problem_id"]) - set(by_id)
    if missing:
        raise ValueError(f"attempt_rows: {len(missing)} problem ids in the samples are not among the problems, "
                         f"e.g. {sorted(missing)[:3]}")
    eos = generator.backend.eos_ids
    out = []
    for pid, s, text in zip(samples["problem_id"], samples["sample"], samples["response"]):
        conv = first_turn(by_id[pid], task)
        prompt = encode_conversation(tok, conv)
        resp = text_completion_ids(tok, conv, prompt, text, eos)
        steps = [len(prompt) + k for k, t in enumerate(resp) if t < len(counts) and counts[t] > 0]
        out.append(Attempted(pid, int(s), prompt, resp, steps, len(prompt) + len(resp) - 1))
    return out


def outcome_rows(attempts: Sequence[Attempted], correct=None, at_steps: bool = False) -> list[Row]:
    """ORM rows: read at the final token (and at every step end with `at_steps`, e.g. to score
    an outcome model on prefixes); trained on `correct` (one 0/1 per attempt) when given."""
    rows = []
    for j, a in enumerate(attempts):
        pos = (a.steps if at_steps else []) + [a.final]
        tgt = [] if correct is None else [float(correct[j])] * len(pos)
        rows.append(Row(a.ids, pos, tgt))
    return rows


def step_rows(attempts: Sequence[Attempted], labels: pd.DataFrame | None = None) -> list[Row]:
    """SORM rows: every step end and the final token; trained on `rollout_labels`' `label`."""
    rows = []
    grouped = None if labels is None else {k: g for k, g in labels.groupby(["problem_id", "sample"])}
    for a in attempts:
        pos = a.steps + [a.final]
        tgt = []
        if grouped is not None:
            g = grouped[(a.problem_id, a.sample)].sort_values("step")
            tgt = [float(v) for v in g["label"]]
        rows.append(Row(a.ids, pos, tgt))
    return rows


def pik_rows(generator: Generator, task: Task, problems: Sequence[Problem], accuracy=None) -> list[Row]:
    """P(IK) rows: each problem's first turn alone, read at its last token; trained on the
    model's empirical accuracy on the problem when `accuracy` (one per problem) is given."""
    rows = []
    for j, p in enumerate(problems):
        ids = encode_conversation(generator.tokenizer, first_turn(p, task))
        rows.append(Row(ids, [len(ids) - 1], [] if accuracy is None else [float(accuracy[j])]))
    return rows


def _continue(generator: Generator, task: Task, by_id: dict, items: list[tuple[Attempted, int]],
              params: SamplingParams, desc: str) -> list[list[tuple[str, bool]]]:
    """For each (attempt, cut): params.n continuations of the attempt's tokens up to and including
    position `cut`, each as (full response text, graded correct)."""
    tok = generator.tokenizer
    convs = [a.ids[:cut + 1] for a, cut in items]
    outs = generator.generate(convs, params, desc=desc)
    res = []
    for (a, cut), comps in zip(items, outs):
        kept = a.ids[len(a.prompt):cut + 1]
        row = []
        for c in comps:
            text = tok.decode(kept + list(c.token_ids), skip_special_tokens=True).strip()
            row.append((text, bool(task.grade(by_id[a.problem_id], text).correct)))
        res.append(row)
    return res


def rollout_labels(generator: Generator, task: Task, problems: Sequence[Problem], attempts: Sequence[Attempted],
                   correct, k: int = 4, temperature: float = 1.0, max_new_tokens: int = 72,
                   seed: int = 0) -> pd.DataFrame:
    """SORM step labels: one row per (attempt, step) with `label` = any of `k` policy rollouts
    from the step's end is correct and `mc_value` = their mean; the last step (the final token)
    is the attempt's own grade (`correct`)."""
    if k < 1:
        raise ValueError(f"rollout_labels: k must be >= 1, got {k}")
    by_id = {p.id: p for p in problems}
    items = [(a, pos) for a in attempts for pos in a.steps]
    params = SamplingParams(temperature=temperature, n=k, max_new_tokens=max_new_tokens, seed=seed)
    outs = _continue(generator, task, by_id, items, params, "SORM rollouts") if items else []
    rows, it = [], iter(outs)
    for a, ok in zip(attempts, correct):
        for s in range(len(a.steps)):
            hits = [c for _, c in next(it)]
            rows.append({"problem_id": a.problem_id, "sample": a.sample, "step": s, "label": float(any(hits)),
                         "mc_value": float(np.mean(hits))})
        rows.append({"problem_id": a.problem_id, "sample": a.sample, "step": len(a.steps), "label": float(ok),
                     "mc_value": float(ok)})
    return pd.DataFrame(rows)


def first_flag(step_values, threshold: float = 0.5) -> int | None:
    """The first step whose value is below `threshold` (None if none is)."""
    for i, v in enumerate(step_values):
        if v < threshold:
            return i
    return None


def resume(generator: Generator, task: Task, problems: Sequence[Problem], attempts: Sequence[Attempted],
           flags: Sequence[int | None], params: SamplingParams, desc: str = "local refinement") -> list[str]:
    """Local refinement: each attempt rewritten from its flagged step on (lines before it kept,
    the flagged step and the rest the policy's, one sample with `params`); an attempt with no
    flag stands as it is."""
    if params.n != 1:
        raise ValueError("resume(params=...): one refinement per attempt (n=1)")
    tok = generator.tokenizer
    by_id = {p.id: p for p in problems}
    todo = [(j, a, (a.steps[f - 1] if f > 0 else len(a.prompt) - 1)) for j, (a, f) in enumerate(zip(attempts, flags))
            if f is not None]
    outs = _continue(generator, task, by_id, [(a, cut) for _, a, cut in todo], params, desc) if todo else []
    texts = [tok.decode(a.response, skip_special_tokens=True).strip() for a in attempts]
    for (j, _, _), row in zip(todo, outs):
        texts[j] = row[0][0]
    return texts


def likelihood_steps(generator: Generator, attempts: Sequence[Attempted]) -> list[np.ndarray]:
    """The policy's own probability of each step as written: exp of the summed T = 1 log-probs of
    the step's tokens (teacher-forced), one array per attempt. No training and no label: the
    self-reward of `sclab.sharpening` read step by step, the zero-cost step verifier to set beside
    a trained SORM (on the toy a slipped result is a token the policy itself finds unlikely)."""
    scored = generator.score([a.prompt for a in attempts], [a.response for a in attempts], desc="step likelihoods")
    out = []
    for a, sc in zip(attempts, scored):
        lp = np.asarray(sc.token_logprobs, dtype=float)
        ends = [p - len(a.prompt) for p in a.steps]
        starts = [0] + [e + 1 for e in ends[:-1]]
        out.append(np.array([np.exp(lp[s:e + 1].sum()) for s, e in zip(starts, ends)]))
    return out
