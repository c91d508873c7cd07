"""Step-level search: a beam over solution lines, scored by self-reward alone.

The toy analogue of step-level search with critics (AlphaLLM, arXiv 2404.12253: MCTS over
steps with value, PRM and ORM critics; SPHERE likewise searches over steps) and of a
self-check trigger at growing intervals (Iterative Deepening Sampling, arXiv 2502.05449).
`line_beam` writes a solution a step at a time: from each of the `beam` best prefixes it
samples `expand` continuations up to the next step delimiter (the toy's `;`, a real math
model's "\\n") or EOS, scores every candidate by its self-reward — log π(y|x) at T = 1,
summed, teacher-forced over the candidate's whole completion (`HFBackend.score_rows`, as
`sample_pool` rescores a sample), never the tempered sampler's log-probs — and keeps the
`beam` best. Finished candidates (EOS, or out of tokens or steps) compete on their totals;
the best one is the answer. A step spans `step_lines` lines at first and `step_growth` times
more each step: with growth 2 the search branches after lines 1, 3, 7, 15, ... (IDS's
triggers at growing intervals); one step over the whole solution with beam 1 is best-of-`expand`.

Where the toy departs from the papers, plainly:
- no critic: no value network, no PRM, no ORM, no rollouts to estimate a prefix's value. The
  self-reward of the prefix is the only score, so the search can only sharpen towards the
  model's own mode (arXiv 2412.01951): it cannot see a misconception the model believes in;
- a beam, not MCTS: no UCT, no backup, no revisiting a pruned prefix;
- lines are exact steps: on the toy a step is one `a opc = r ;` line (five tokens), a unit
  the model was trained on; a real model's "\\n" steps vary in length and meaning, and summed
  log-probs then favour short steps;
- the IDS "trigger" writes no reflection: IDS inserts a trigger sentence for the model to
  reconsider in text; here a trigger is a branch-and-prune point (the check is the
  self-reward comparison of alternative segments), since the toy model never learned to
  reflect mid-solution.

The search stops a conversation early when its best finished total is at least its best live
prefix's (log-probs only fall as a sequence grows, so no live prefix can still beat it).
Compute is the tokens sampled (`generated_tokens`, pruned candidates included), the unit
best-of-N is charged in (N × tokens per sample); teacher-forced scoring is one forward pass over
tokens already generated and, as for best-of-N's rescoring, not counted. Wall time is another
matter: each step re-reads every prefix (its prompt prefilled once per `expand` samples, no KV
cache across steps), so a search costs more CPU than best-of-N at equal generated tokens.

Measured on the shipped toy (300 test problems, T = 1, seed 0; tokens per problem): greedy 0.817;
best-of-N by self-reward 0.738 at N = 2 (82 tokens), 0.797 at 4 (165), 0.817 at 32; beam 1 x 2
0.783 (82 tokens, +4.6 points over best-of-N at equal tokens, CI [1.8, 7.3]), beam 1 x 4 0.827
(165, +3.0 [1.0, 5.2]), beam 4 x 4 with growth 2 0.833 (276, +2.4 [0.9, 4.2]). The gain is in
the unsure class (beam 4 x 4, growth 2: 0.843 against greedy's 0.794); on misconceptions both
score 0 while best-of-N keeps its lucky samples at small N (a mode-seeker cannot see them).
One core, 300 problems: beam 1 x 4 took 11 s, 4 x 4 34 s; the pool of 32 samples 52 s.

    >>> kept, dropped = prune([Hyp((1,), -2.0), Hyp((2,), -1.0), Hyp((1,), -2.0), Hyp((3,), -5.0)], beam=2)
    >>> [h.ids for h in kept], dropped                  # the duplicate of (1,) is one hypothesis
    ([(2,), (1,)], 1)
    >>> [segment_lines(k, 1, 2.0) for k in range(5)]   # a check after lines 1, 3, 7, 15, 31
    [1, 2, 4, 8, 16]

    >>> # found = line_beam(model, tokenizer, [first_turn(p, task) for p in problems], beam=4, expand=4)
    >>> # search_curves(pool, greedy, {"beam 4x4": search_records(gen, task, problems)}, problem_classes(...))
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from sclab import records
from sclab.generate import Completion, Generator, SamplingParams, row_seed
from sclab.generate.hf import HFBackend
from sclab.records import COLUMNS
from sclab.rollout import first_turn
from sclab.sharpening.bon import _boot, curves, pick_weights
from sclab.sharpening.pool import REWARD_COLUMNS
from sclab.tasks.base import Problem, Task

SEARCH_COLUMNS = ["beam", "expand", "step_lines", "step_growth", "generated_tokens", "search_steps", "pruned"]


@dataclass(frozen=True)
class Hyp:
    """A partial or finished solution: its completion tokens and their summed T = 1 log-prob."""

    ids: tuple[int, ...]
    score: float
    finish: str | None = None            # None: live; "stop": ended on EOS; "length": out of tokens or steps
    token_logprobs: tuple[float, ...] = ()


@dataclass
class Searched:
    """`line_beam`'s answer for one conversation. `completion.logprob` is the self-reward and
    `completion.token_logprobs` its teacher-forced terms."""

    completion: Completion
    generated_tokens: int                # every token sampled for this conversation: the compute
    steps: int                           # search steps run
    pruned: int                          # live candidates the beam dropped (0: nothing was cut)
    finished: list[float]                # the self-reward of every distinct finished candidate, best first

    @property
    def self_reward(self) -> float:
        return self.completion.logprob


def dedupe(cands: Sequence[Hyp]) -> list[Hyp]:
    """One candidate per token sequence (the first): two samples that wrote the same tokens are
    one hypothesis, and letting both hold beam slots would narrow the beam."""
    seen, out = set(), []
    for h in cands:
        if h.ids not in seen:
            seen.add(h.ids)
            out.append(h)
    return out


def prune(cands: Sequence[Hyp], beam: int) -> tuple[list[Hyp], int]:
    """The `beam` best distinct candidates by score (ties: first come first), and how many
    distinct ones were dropped."""
    if not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be an int >= 1, got {beam!r}")
    distinct = dedupe(cands)
    kept = sorted(distinct, key=lambda h: -h.score)[:beam]   # sorted is stable: ties keep their order
    return kept, len(distinct) - len(kept)


def settled(live: Sequence[Hyp], finished: Sequence[Hyp]) -> bool:
    """Whether a search is over: no live prefix, or a finished total no live one can still beat
    (a log-prob only falls as tokens are added).

    >>> settled([Hyp((1,), -3.0)], [Hyp((2,), -2.5, "stop")]), settled([Hyp((1,), -2.0)], [Hyp((2,), -2.5, "stop")])
    (True, False)
    """
    if not live:
        return True
    return bool(finished) and max(h.score for h in finished) >= max(h.score for h in live)


def segment_lines(step: int, lines: int = 1, growth: float = 1.0) -> int:
    """Lines that search step `step` (0-based) writes: `lines`, times `growth` per step, rounded."""
    if not isinstance(lines, int) or isinstance(lines, bool) or lines < 1:
        raise ValueError(f"step_lines must be an int >= 1, got {lines!r}")
    if not growth >= 1.0:
        raise ValueError(f"step_growth must be >= 1 (intervals grow or stay), got {growth!r}")
    return max(1, round(lines * growth ** step))


def delimiter_counts(tokenizer, delimiter: str, size: int) -> torch.Tensor:
    """How often `delimiter` occurs in each token's text (ids 0..size-1; ids past the tokenizer's
    vocabulary, e.g. padded embedding rows, count 0). A step ends on the token that holds its
    delimiter, even where that token's text goes on past it (".\\n\\n" for "\\n")."""
    if not isinstance(delimiter, str) or not delimiter:
        raise ValueError(f"step_stop must be a non-empty str (the toy's ';', a math model's '\\n'), got {delimiter!r}")
    n = min(size, len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
    counts = torch.zeros(size, dtype=torch.long)
    counts[:n] = torch.tensor([t.count(delimiter) for t in texts], dtype=torch.long)
    if not counts.any():
        raise ValueError(f"step_stop {delimiter!r} occurs in no token of the vocabulary: no step could end")
    return counts


@dataclass
class Found:
    """What `beam_search` found for one conversation."""

    finished: list[Hyp]                  # every distinct finished candidate, best first
    generated_tokens: int                # tokens sampled, pruned candidates included: the compute
    steps: int                           # search steps run
    pruned: int                          # distinct live candidates the beam dropped (0: nothing was cut)


def beam_search(n: int, propose, *, beam: int, max_steps: int, progress: bool = False,
                desc: str = "line beam") -> list[Found]:
    """The search loop, model-free: `n` conversations, each from one empty live prefix.

    Each step, `propose(step, live)` gets the live prefixes [(conversation, Hyp), ...] of the
    conversations not yet `settled` and returns, for each, its candidates [(Hyp, tokens sampled)]
    (a candidate with `finish` set is finished). Finished candidates join the conversation's pool;
    the `beam` best distinct live ones (`prune`) go on. After `max_steps` steps the live ones
    finish as "length". A conversation's answer is its best finished total (`Found.finished[0]`).

    >>> def propose(step, live):   # two children per prefix, scores -1 and -2 a step; finished at step 1
    ...     return [[(Hyp(h.ids + (k,), h.score - k, "stop" if step else None), 1) for k in (1, 2)] for _, h in live]
    >>> f = beam_search(1, propose, beam=1, max_steps=4)[0]
    >>> f.finished[0].ids, f.finished[0].score, f.generated_tokens, f.pruned
    ((1, 1), -2.0, 4, 1)
    """
    for name, v in (("beam", beam), ("max_steps", max_steps)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    live: list[list[Hyp]] = [[Hyp((), 0.0)] for _ in range(n)]
    found = [Found([], 0, 0, 0) for _ in range(n)]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=max_steps, desc=desc, unit="step")
    try:
        for step in range(max_steps):
            active = [c for c in range(n) if not settled(live[c], found[c].finished)]
            if not active:
                break
            pairs = [(c, h) for c in active for h in live[c]]
            proposed = propose(step, pairs)
            if len(proposed) != len(pairs):
                raise ValueError(f"propose returned candidates for {len(proposed)} prefixes, expected {len(pairs)}")
            cands: dict[int, list[Hyp]] = {c: [] for c in active}
            for (c, _), kids in zip(pairs, proposed):
                for h, tokens in kids:
                    cands[c].append(h)
                    found[c].generated_tokens += tokens
            for c in active:
                f = found[c]
                f.steps += 1
                f.finished = dedupe(f.finished + [h for h in cands[c] if h.finish])
                live[c], dropped = prune([h for h in cands[c] if not h.finish], beam)
                f.pruned += dropped
            if bar:
                bar.update(1)
                bar.set_postfix(searching=len(active))
    finally:
        if bar:
            bar.close()
    for c in range(n):
        found[c].finished = sorted(dedupe(found[c].finished + [replace(h, finish="length") for h in live[c]]),
                                   key=lambda h: -h.score)
    return found


def line_beam(model, tokenizer, conversations: Sequence, *, beam: int = 4, expand: int = 4, temperature: float = 1.0,
              step_stop: str = ";", step_lines: int = 1, step_growth: float = 1.0, max_steps: int = 64,
              max_new_tokens: int = 256, seed: int = 0, batch_size: int = 256, progress: bool = True) -> list[Searched]:
    """Beam search over steps by self-reward; one `Searched` per conversation (see the module).

    A candidate's continuation is drawn with the seed row_seed(seed, its context tokens, j) for
    its expansion j < expand, so it does not depend on the batch, on `beam`, or on which other
    prefixes survived. At temperature 0 every expansion is the argmax: beam 1, expand 1 is
    greedy decoding. A step of a sequence never runs past its `max_new_tokens`."""
    for name, v in (("expand", expand), ("max_new_tokens", max_new_tokens)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"line_beam: {name} must be an int >= 1, got {v!r}")
    if not temperature >= 0:
        raise ValueError(f"line_beam: temperature must be >= 0 (0 = greedy steps), got {temperature!r}")
    segment_lines(0, step_lines, step_growth)   # validates both
    backend = HFBackend(model, tokenizer, batch_size=batch_size)
    eos = set(backend.eos_ids)
    counts = delimiter_counts(tokenizer, step_stop, model.get_input_embeddings().num_embeddings)
    prompts = [backend.encode(c) for c in conversations]
    wall = [0.0] * len(prompts)

    def propose(step: int, live: list[tuple[int, Hyp]]) -> list[list[tuple[Hyp, int]]]:
        rows = [(c, h, j) for c, h in live for j in range(expand)]   # runs of `expand` rows of one prefix
        ctx = [prompts[c] + list(h.ids) for c, h, _ in rows]
        budget = [max_new_tokens - len(h.ids) for _, h, _ in rows]
        t0 = time.time()
        comps: list[Completion | None] = [None] * len(rows)
        for b in sorted(set(budget)):   # one call per token budget: no step runs past its sequence's
            idx = [i for i, x in enumerate(budget) if x == b]
            got = backend.generate_rows([(ctx[i], row_seed(seed, ctx[i], rows[i][2])) for i in idx],
                                        SamplingParams(temperature=temperature, max_new_tokens=b), progress=False,
                                        delimiters=(counts, segment_lines(step, step_lines, step_growth)),
                                        share=expand)
            for i, comp in zip(idx, got):
                comps[i] = comp
        # a candidate's score: one teacher-forced pass over its whole completion, as sample_pool
        # rescores a sample; each distinct candidate once (expansions of a prefix often agree)
        cand = [(c, h.ids + tuple(comp.token_ids)) for (c, h, _), comp in zip(rows, comps)]
        distinct = list(dict.fromkeys(cand))
        scored = dict(zip(distinct, backend.score_rows([(prompts[c], list(ids)) for c, ids in distinct],
                                                       progress=False)))
        share = (time.time() - t0) / len(rows)
        out: list[list[tuple[Hyp, int]]] = [[] for _ in live]
        for r, ((c, ids), comp) in enumerate(zip(cand, comps)):
            wall[c] += share
            finish = "stop" if comp.token_ids[-1] in eos else "length" if len(ids) >= max_new_tokens else None
            sc = scored[(c, ids)]
            out[r // expand].append((Hyp(ids, sc.total, finish, tuple(sc.token_logprobs)), comp.tokens))
        return out

    was_training = model.training
    model.eval()
    try:
        found = beam_search(len(prompts), propose, beam=beam, max_steps=max_steps, progress=progress)
    finally:
        model.train(was_training)
    out = []
    for c, f in enumerate(found):
        best = f.finished[0]
        text = tokenizer.decode(list(best.ids), skip_special_tokens=True).strip()
        comp = Completion(text=text, token_ids=list(best.ids), logprob=float(best.score), tokens=len(best.ids),
                          time=wall[c], finish_reason=best.finish, token_logprobs=list(best.token_logprobs))
        out.append(Searched(comp, f.generated_tokens, f.steps, f.pruned, [h.score for h in f.finished]))
    return out


def search_records(generator: Generator, task: Task, problems: Sequence[Problem], *, beam: int = 4, expand: int = 4,
                   temperature: float = 1.0, step_stop: str = ";", step_lines: int = 1, step_growth: float = 1.0,
                   max_steps: int = 64, max_new_tokens: int = 256, seed: int = 0,
                   progress: bool = True) -> pd.DataFrame:
    """`line_beam`'s answers to `problems` (turn 1, as `first_turn` asks) as graded, labelled
    records (strategy "line-beam"), with `sample_pool`'s reward columns (the self-reward is the
    search's total) and `SEARCH_COLUMNS`: the beam settings, `generated_tokens` (the compute),
    `search_steps` and `pruned`."""
    if not problems:
        raise ValueError("search_records: no problems given")
    if generator.backend_name != "hf":
        raise ValueError(f"search_records needs the hf backend (a step-by-step sampler), "
                         f"not {generator.backend_name!r}")
    convs = [first_turn(p, task) for p in problems]
    found = line_beam(generator.model, generator.tokenizer, convs, beam=beam, expand=expand, temperature=temperature,
                      step_stop=step_stop, step_lines=step_lines, step_growth=step_growth, max_steps=max_steps,
                      max_new_tokens=max_new_tokens, seed=seed, batch_size=generator.backend.batch_size,
                      progress=progress)
    rows = []
    for p, f in zip(problems, found):
        comp = f.completion
        r = records.row(p, 0, 1, "line-beam", "intrinsic", comp, task.grade(p, comp.text), task=task)
        r.update(self_reward=comp.logprob, self_reward_mean=comp.logprob / max(comp.tokens, 1),
                 reward_tokens=comp.tokens, temperature=temperature, beam=beam, expand=expand,
                 step_lines=step_lines, step_growth=step_growth, generated_tokens=f.generated_tokens,
                 search_steps=f.steps, pruned=f.pruned)
        rows.append(r)
    return pd.DataFrame(rows, columns=COLUMNS + list(task.label_columns) + REWARD_COLUMNS + ["temperature"]
                        + SEARCH_COLUMNS)


def equal_token_bon(pool: pd.DataFrame, search: pd.DataFrame) -> pd.DataFrame:
    """Best-of-N by self-reward at the search's compute, problem by problem: N_p = the search's
    generated tokens on problem p over the pool's mean tokens per sample there, rounded and
    clipped to 1..n_p (`clipped` says where the pool was too small). Index problem_id; columns
    N, tokens (N × tokens per sample), acc (exact, `pick_weights`), clipped.

    >>> pool = pd.DataFrame({"problem_id": 0, "sample": [0, 1, 2], "turn": 1, "tokens": 10,
    ...                      "correct": [False, True, False], "self_reward": [-1.0, -2.0, -3.0]})
    >>> search = pd.DataFrame({"problem_id": [0], "sample": 0, "turn": 1, "generated_tokens": [20]})
    >>> r = equal_token_bon(pool, search).loc[0]   # 20 tokens = 2 samples; sample 1 tops a pair 1/3 of the time
    >>> int(r["N"]), float(r["tokens"]), round(float(r["acc"]), 4), bool(r["clipped"])
    (2, 20.0, 0.3333, False)
    """
    records.validate(search, ["generated_tokens"], "search records")
    rows = pool[pool["turn"] == 1]
    records.validate(rows, ["correct", "tokens", "self_reward"], "pool")
    groups = dict(list(rows.groupby("problem_id", sort=True)))
    out = {}
    for pid, spent in zip(search["problem_id"], search["generated_tokens"]):
        if pid not in groups:
            raise ValueError(f"equal_token_bon: the pool has no samples of problem {pid!r} "
                             f"(sample_pool on the same problems)")
        g = groups[pid]
        per = float(g["tokens"].mean())
        want = int(round(spent / per))
        N = min(max(want, 1), len(g))
        acc = float(pick_weights(g["self_reward"].to_numpy(float), N) @ g["correct"].to_numpy(float))
        out[pid] = {"N": N, "tokens": N * per, "acc": acc, "clipped": want > len(g)}
    return pd.DataFrame.from_dict(out, orient="index").sort_index()


def search_curves(pool: pd.DataFrame, greedy: pd.DataFrame, searches: dict[str, pd.DataFrame],
                  classes: pd.Series | dict | None = None, Ns: Sequence[int] | None = None, *, n_boot: int = 1000,
                  seed: int = 0, alpha: float = 0.05, maj_boot: int = 200) -> pd.DataFrame:
    """Accuracy against generated tokens: `curves`' rows (best-of-N, maj@k, pass@k, T = 1 mean,
    greedy; `search` empty), then per search (label -> `search_records`) a row for the search
    and one for best-of-N at its tokens ("best-of-N (equal tokens)", `equal_token_bon`,
    `generations` its mean N), each with its problem-bootstrap CI (the draws `curves` uses, so
    every difference is paired): the search's row carries `vs_greedy` and `vs_bon` (minus
    best-of-N at equal tokens) with bounds, its mean `self_reward`, and `clipped`, the share of
    problems where the pool was too small for equal tokens. Split by `classes` as `curves` is."""
    if not searches:
        raise ValueError("search_curves: searches must map a label to search_records(...) (got none)")
    base = curves(pool, greedy, Ns, classes, n_boot=n_boot, seed=seed, alpha=alpha, maj_boot=maj_boot)
    base["search"] = ""
    g = greedy[greedy["turn"] == 1].drop_duplicates("problem_id").set_index("problem_id")["correct"].astype(float)
    pids = sorted(pool.loc[pool["turn"] == 1, "problem_id"].unique())
    cls = None if classes is None else pd.Series(classes)
    rows = []
    for label, s in searches.items():
        s = s[s["turn"] == 1].set_index("problem_id")
        missing = pd.Index(pids).difference(s.index)
        if len(missing):
            raise ValueError(f"search {label!r} has no record of problem {missing[0]!r} "
                             f"(run it on the pool's problems)")
        s = s.loc[pids]
        bon = equal_token_bon(pool, s.reset_index()).loc[pids]
        c = s["correct"].to_numpy(float)
        b, gr = bon["acc"].to_numpy(), g.loc[pids].to_numpy()
        vals = np.stack([c, b, c - gr, c - b, b - gr], axis=1)
        groups = {"all": np.ones(len(pids), bool)}
        if cls is not None:
            groups.update({k: (cls.loc[pids] == k).to_numpy() for k in sorted(cls.loc[pids].unique(), key=str)})
        for name, m in groups.items():
            point, lo, hi = _boot(vals[m], n_boot, seed, alpha)
            common = {"class": name, "search": label, "n_problems": int(m.sum())}
            rows.append({**common, "method": label, "generations": np.nan,
                         "tokens": float(s["generated_tokens"].to_numpy(float)[m].mean()),
                         "acc": point[0], "acc_lo": lo[0], "acc_hi": hi[0],
                         "vs_greedy": point[2], "vs_greedy_lo": lo[2], "vs_greedy_hi": hi[2],
                         "vs_bon": point[3], "vs_bon_lo": lo[3], "vs_bon_hi": hi[3],
                         "self_reward": float(s["self_reward"].to_numpy(float)[m].mean()),
                         "clipped": float(bon["clipped"].to_numpy()[m].mean())})
            rows.append({**common, "method": "best-of-N (equal tokens)", "generations": float(bon["N"][m].mean()),
                         "tokens": float(bon["tokens"][m].mean()), "acc": point[1], "acc_lo": lo[1], "acc_hi": hi[1],
                         "vs_greedy": point[4], "vs_greedy_lo": lo[4], "vs_greedy_hi": hi[4]})
    return pd.concat([base, pd.DataFrame(rows)], ignore_index=True)
