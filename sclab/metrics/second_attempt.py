"""Does the second attempt read the first? Readouts of two-attempt records and of the probes.

A second attempt can raise accuracy without using the first at all: a resampler that is
simply sharper on the second turn gains as much. These pure functions separate the readings
(the tables they read come from `sclab.rollout` and `sclab.probes`):

* `keep_fix_rates`: P(keep | right at t1) and P(fix | wrong at t1). A selective corrector
  keeps right answers and fixes wrong ones; a resampler that ignores attempt 1 has both
  close to its own accuracy.
* `sequential_vs_parallel`: attempt 2 against a fresh, independent first-turn sample of the
  same (problem, sample) pairs (`sclab.probes.parallel_resample`).
* `probe_summary`: attempt 2 after a clean attempt 1 (`sclab.probes.gold_probe`) or another
  problem's (`sclab.probes.context_swap`). A model that reads attempt 1 does better after the
  gold attempt and is moved by the swap; one that ignores it is unchanged by both.
* `second_attempt_report`: all of the above as one flat dict of floats, for recording, with
  the toy world's edit locations (`sclab.toy.edits`); `mechanism`: a one-line reading of it.

    >>> import pandas as pd; from sclab.metrics.second_attempt import keep_fix_rates
    >>> df = pd.DataFrame({"problem_id": [0, 0, 1, 1], "sample": 0, "turn": [1, 2, 1, 2],
    ...                    "correct": [True, True, False, True], "extracted": ["3", "3", "4", "5"]})
    >>> r = keep_fix_rates(df); r["keep_right"], r["fix_wrong"], r["selectivity"], r["change_wrong"]
    (1.0, 1.0, 0.0, 1.0)
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from sclab.metrics.bootstrap import paired_diff_ci
from sclab.metrics.correction import ratio
from sclab.records import answer_changed, pairs, pairs_with


def keep_fix_rates(records: pd.DataFrame, t1: int = 1, t2: int = 2) -> dict:
    """P(keep | right at t1), P(fix | wrong at t1) and how often the answer changes in each case.

    keep_right = right at t2 among the pairs right at t1; fix_wrong = right at t2 among those
    wrong at t1; selectivity = keep_right - fix_wrong; change_right / change_wrong = the
    extracted answer changed (`sclab.records.answer_changed`). Pooled over (problem, sample)
    pairs; NaN where nothing is right (or wrong) at t1.

    Selective correction keeps right answers and fixes wrong ones: keep_right near 1 with
    fix_wrong well above 0. A sharper resampler that ignores attempt 1 draws attempt 2 afresh,
    so P(keep|right) ≈ P(fix|wrong) ≈ its own accuracy and selectivity ≈ 0 (up to
    problem difficulty: hard problems are both wrong at t1 and hard to fix, which makes the
    selectivity of a pure resampler positive; compare with `sequential_vs_parallel`).

    Identities: keep_right = 1 - delta_c2i/acc_t1 and fix_wrong = delta_i2c/(1 - acc_t1)
    (`sclab.metrics.correction_metrics`); with the same number of samples per problem they
    equal CCT's CL and CS, and selectivity is `fit_convergence`'s alpha.
    """
    p = pairs(records, t1, t2, ("correct", "extracted"))
    c1, c2 = p["correct_1"].to_numpy(bool), p["correct_2"].to_numpy(bool)
    changed = answer_changed(p["extracted_1"], p["extracted_2"])
    n_right, n_wrong = int(c1.sum()), int((~c1).sum())
    keep, fix = float(ratio((c1 & c2).sum(), n_right)), float(ratio((~c1 & c2).sum(), n_wrong))
    return {"n": len(p), "n_right": n_right, "n_wrong": n_wrong, "keep_right": keep, "fix_wrong": fix,
            "selectivity": keep - fix, "change_right": float(ratio((c1 & changed).sum(), n_right)),
            "change_wrong": float(ratio((~c1 & changed).sum(), n_wrong))}


def sequential_vs_parallel(records: pd.DataFrame, parallel_df: pd.DataFrame, t1: int = 1, t2: int = 2,
                           n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Attempt 2 against a fresh independent sample on the same (problem, sample) pairs.

    acc_t1, acc_t2 (episode), acc_parallel (`sclab.probes.parallel_resample`), seq_minus_parallel =
    acc_t2 - acc_parallel with a paired problem-bootstrap CI (`_lo`, `_hi`), and the
    pass@2-style oracle unions union_seq = P(t1 or t2 right), union_parallel = P(t1 or
    fresh right): a resampler that ignores attempt 1 has seq_minus_parallel ≈ 0."""
    both = pairs_with(records, parallel_df, "parallel_df", t1, t2)
    c1, c2, cp = (both[c].to_numpy(bool) for c in ("correct_1", "correct_2", "correct_o"))
    lo, hi = paired_diff_ci(both["problem_id"].to_numpy(), c2, cp, n_boot, alpha, seed)
    return {"n": len(both), "acc_t1": float(c1.mean()), "acc_t2": float(c2.mean()), "acc_parallel": float(cp.mean()),
            "seq_minus_parallel": float(c2.mean() - cp.mean()), "seq_minus_parallel_lo": lo,
            "seq_minus_parallel_hi": hi, "union_seq": float((c1 | c2).mean()),
            "union_parallel": float((c1 | cp).mean())}


def probe_summary(records: pd.DataFrame, gold: pd.DataFrame | None = None, swap: pd.DataFrame | None = None,
                  t1: int = 1, t2: int = 2) -> dict:
    """acc_t2_own (the episodes' attempt 2) against acc_t2_gold / acc_t2_swap on the same
    (problem, sample) pairs, their differences, and swap_follows_donor: the fraction of swapped
    attempts 2 that give the donor's answer (a copy of attempt 1, whatever the question)."""
    out = {}
    for name, df in (("gold", gold), ("swap", swap)):
        if df is None:
            continue
        both = pairs_with(records, df, f"{name} probe", t1, t2)
        own, probe = both["correct_2"].to_numpy(bool), both["correct_o"].to_numpy(bool)
        out |= {f"n_{name}": len(both), f"acc_t2_own_{name}": float(own.mean()),
                f"acc_t2_{name}": float(probe.mean()), f"{name}_minus_own": float(probe.mean() - own.mean())}
        if name == "swap" and "donor_extracted" in df.columns:
            out["swap_follows_donor"] = float((~answer_changed(df["donor_extracted"], df["extracted"])).mean())
    if gold is None and swap is None:
        raise ValueError("probe_summary: pass gold= and/or swap= probe results")
    out["acc_t2_own"] = out.get("acc_t2_own_gold", out.get("acc_t2_own_swap"))
    return out


def second_attempt_report(records: pd.DataFrame, *, parallel: pd.DataFrame | None = None,
                          gold: pd.DataFrame | None = None, swap: pd.DataFrame | None = None,
                          problems=None, p: int = 13, n_boot: int = 1000, seed: int = 0) -> dict:
    """One flat dict of floats: keep_fix_rates, then (when given) sequential_vs_parallel,
    probe_summary, and, with toy-world `problems`, summarize_edits of the episodes
    (`edit_*`) and of the parallel resamples (`parallel_edit_*`; `sclab.toy.edits`)."""
    out = dict(keep_fix_rates(records))
    if parallel is not None:
        out |= sequential_vs_parallel(records, parallel, n_boot=n_boot, seed=seed)
    if gold is not None or swap is not None:
        out |= probe_summary(records, gold, swap)
    if problems is not None:
        from sclab.toy.edits import edit_locations, summarize_edits  # toy-world only: parses its solution lines

        out |= summarize_edits(edit_locations(records, problems, p))
        if parallel is not None:
            base = summarize_edits(edit_locations(records, problems, p, second=parallel))
            out |= {f"parallel_{k}": v for k, v in base.items()}
    return {k: float(v) for k, v in out.items()}


def mechanism(m: Mapping, base: Mapping | None = None, changed_floor: float = 0.1, moved: float = 0.05) -> str:
    """A one-line reading of a method's metrics (from `sclab.probes.evaluate_model`): where its Δ comes from.

    In order:
    - "sabotaged attempt 1": attempt 1 more than 2 points below `base`'s, with Δ > 0;
    - "c->i damage": the Δ CI lies below 0;
    - "copy collapse": the Δ CI covers 0 and the answer changes after fewer than `changed_floor` of the
      wrong first attempts (`change_wrong`; the overall answer-changed rate without it);
    - "both attempts improved" / "both attempts degraded": the Δ CI covers 0 while Acc@t1 moved by more
      than `moved` from `base`'s (training changed the shared sampler, not the second attempt's use of the
      first);
    - "no significant change": any other Δ CI covering 0;
    - Δ > 0: "reads attempt 1" when a clean attempt 1 helps and another problem's attempt hurts (gold
      probe above, context swap below its own Acc@t2), "beats resampling" when attempt 2 beats a fresh
      sample (CI above 0) without the probes, "sharper second attempt only" otherwise.

    >>> mechanism({"acc_t1": 0.6, "acc_t2": 0.6, "delta": 0.0, "delta_lo": -0.03, "delta_hi": 0.03, "change_wrong": 0.02})
    'copy collapse'
    """
    if base is not None and m["acc_t1"] < base["acc_t1"] - 0.02 and m["delta"] > 0:
        return "sabotaged attempt 1"
    if m["delta_hi"] < 0:
        return "c->i damage"
    if m["delta_lo"] <= 0 <= m["delta_hi"]:
        changed = m.get("change_wrong", m.get("answer_changed_rate", np.nan))
        if changed < changed_floor:
            return "copy collapse"
        if base is not None and abs(m["acc_t1"] - base["acc_t1"]) > moved:
            return "both attempts improved" if m["acc_t1"] > base["acc_t1"] else "both attempts degraded"
        return "no significant change"
    if m.get("acc_t2_gold", np.nan) > m["acc_t2"] and m.get("acc_t2_swap", np.nan) < m["acc_t2"]:
        return "reads attempt 1"
    if m.get("seq_minus_parallel_lo", np.nan) > 0:
        return "beats resampling"
    return "sharper second attempt only"
