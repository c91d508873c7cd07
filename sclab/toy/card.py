"""The world card: every knob of a toy world, its value, and its measured effect on the model.

A toy result is only as trustworthy as the world behind it, so the world measures itself:
greedy and T=1 accuracy, the kinds of error in wrong first attempts, what each retry word
does (keep / revise / fresh, read from the text), each word's Δ with a CI and split by the kind
of attempt 1's error (the neutral-base check: no word should correct), how faithfully a
revision copies a wrong line (the override rate), whether a revision splits at wrong lines
more than its prior says, and how much an oracle-told fresh look fixes per error kind.

    >>> from sclab.toy.card import knobs
    >>> knobs()["slip_rate"]
    0.03
    >>> # card = measure_world(gen, ArithTask(), problems, SamplingParams(n=2))   # ~2 min on 2 cores
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sclab.metrics import draws
from sclab.records import pairs as records_pairs
from sclab.toy.labels import LABEL_COLUMNS, LINE_KINDS, label_attempt, line_kind
from sclab.toy.registry import RETRY_WORDS, ToyWorld
from sclab.toy.world import parse_lines

# the strategy that says each retry word on the toy world (sclab.strategies)
WORD_STRATEGY = {"again": "retry", "confirm": "cct-confident", "check": "cct-critical"}
GROUPS = ("right",) + LINE_KINDS + ("structure", "malformed")


def knobs(world: ToyWorld | None = None) -> dict:
    """The world's knobs as a flat dict (tuples of pairs become dicts)."""
    out = {}
    for k, v in dataclasses.asdict(world or ToyWorld()).items():
        out[k] = dict(v) if isinstance(v, (tuple, list)) and v and isinstance(v[0], (tuple, list)) else v
    return out


def add_labels(records: pd.DataFrame, problems, world: ToyWorld | None = None) -> pd.DataFrame:
    """`records` with the error-label columns (`LABEL_COLUMNS`) of every attempt; a kept answer
    (`same > r`) and a carried row inherit the labels of the attempt whose answer they keep."""
    by_id = {p.id: p for p in problems}
    rows = [label_attempt(by_id[pid], text, world) for pid, text in zip(records["problem_id"], records["response"])]
    lab = pd.DataFrame(rows, index=records.index, columns=LABEL_COLUMNS)
    out = pd.concat([records.drop(columns=[c for c in LABEL_COLUMNS if c in records.columns]), lab], axis=1)
    # inherit along each episode: a keep restates the previous attempt's answer
    out = out.sort_values(["problem_id", "sample", "turn"])
    inherit = (out["form"] == "keep") | out.get("carried", pd.Series(False, index=out.index)).astype(bool)
    own = out[["problem_id", "sample"]].copy()
    for col in ("first_wrong", "error_kind", "n_wrong", "lucky"):
        # a sentinel keeps an attempt's own "no error" (None) apart from a gap to fill
        own[col] = out[col].astype(object).where(out[col].notna(), "-").where(~inherit)
        filled = own.groupby(["problem_id", "sample"])[col].ffill()
        out[col] = filled.where(filled != "-", None).astype(object)
    return out.loc[records.index]


def _group(kind) -> str:
    """The group of a wrong attempt: the kind of its first wrong line (every wrong attempt has one)."""
    return "structure" if kind is None or (isinstance(kind, float) and np.isnan(kind)) else str(kind)


def kind_table(records: pd.DataFrame, t1: int = 1, t2: int = 2, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Transitions split by attempt 1's error kind (records need `error_kind`, see `add_labels`).

    One row per group of attempt 1 - right, slip, unsure, misconception, structure, malformed -
    with n, its share of all pairs, `p_right_t2` (P(right at t2 | group): CL for the right
    group, the fix rate for the others) with a problem-bootstrap CI, and its contribution to
    Δi→c (wrong groups) or Δc→i (the right group) as fractions of all pairs."""
    pairs = records_pairs(records, t1, t2, ("correct", "error_kind"))
    # a lucky hit is right: it counts in the right group, whatever its lines say
    pairs["group"] = [("right" if c else _group(k)) for k, c in zip(pairs["error_kind_1"], pairs["correct_1"])]
    pids, inv = np.unique(pairs["problem_id"].astype(str), return_inverse=True)
    w = np.vstack([np.ones(len(pids))] + [np.bincount(d, minlength=len(pids)) for d in draws(len(pids), n_boot, seed)])
    total = np.bincount(inv, minlength=len(pids)).astype(float)
    rows = []
    for g in GROUPS:
        sel = (pairs["group"] == g).to_numpy()
        if not sel.any():
            continue
        n_g = np.bincount(inv[sel], minlength=len(pids)).astype(float)
        r_g = np.bincount(inv[sel], weights=pairs.loc[sel, "correct_2"].astype(float), minlength=len(pids))
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (w @ r_g) / (w @ n_g)
            moved = (w @ (n_g - r_g) if g == "right" else w @ r_g) / (w @ total)
        lo, hi = np.nanquantile(p[1:], [0.025, 0.975])
        rows.append({"group": g, "n": int(sel.sum()), "share": float(n_g.sum() / total.sum()),
                     "p_right_t2": float(p[0]), "p_right_t2_lo": float(lo), "p_right_t2_hi": float(hi),
                     "transition": "c→i" if g == "right" else "i→c", "contribution": float(moved[0])})
    return pd.DataFrame(rows).set_index("group")


def error_shares(records: pd.DataFrame, turn: int = 1) -> dict:
    """Among wrong attempts at `turn`: the share whose first wrong line is of each kind."""
    wrong = records[(records["turn"] == turn) & ~records["correct"].astype(bool)]
    counts = wrong["error_kind"].fillna("structure").value_counts()
    return {k: float(counts.get(k, 0) / max(1, len(wrong))) for k in LINE_KINDS + ("structure", "malformed")}


def behaviour_shares(records: pd.DataFrame, turn: int = 2) -> dict:
    """What the attempts at `turn` did, read from their text: keep / revise / solve (fresh) / malformed."""
    f = records.loc[(records["turn"] == turn) & ~records.get("carried", False), "form"].value_counts(normalize=True)
    return {k: float(f.get(k, 0.0)) for k in ("keep", "revise", "solve", "malformed")}


def copy_fidelity(records: pd.DataFrame, world: ToyWorld | None = None, t1: int = 1, t2: int = 2) -> dict:
    """How revisions at t2 treat attempt 1's lines, read line by line while the revision still
    copies (up to its `redo` mark, and while every earlier line matched attempt 1's).

    - `override_rate`: at an attempt-1 line that is wrong, the fraction of revisions that wrote
      it differently (the base was taught 0: a revision copies slips; a high rate is an
      implicit fix); `copy_error_rate` is the same at right lines (the copy's own noise);
    - `split_ratio_wrong` / `split_ratio_right`: splits observed at lines the revision reached
      while copying, over the splits its prior predicts there (k uniform on 1..L-1: hazard
      1/(L-i) at line i >= 1), at wrong and at right attempt-1 lines. The neutral base has both
      near 1; a selective corrector splits at wrong lines far more often than its prior says.
    Also per kind: `override_rate_<kind>`."""
    world = world or ToyWorld()
    a = records[records["turn"] == t1].set_index(["problem_id", "sample"])["response"]
    b = records[(records["turn"] == t2) & (records["form"] == "revise")].set_index(["problem_id", "sample"])
    seen = {"wrong": 0, "right": 0}
    differ = {"wrong": 0, "right": 0}
    kind_n, kind_over = {k: 0 for k in LINE_KINDS}, {k: 0 for k in LINE_KINDS}
    split_obs = {"wrong": 0.0, "right": 0.0}
    split_exp = {"wrong": 0.0, "right": 0.0}
    for key, row in b.iterrows():
        l1, l2, k = parse_lines(a.get(key, "")) or [], parse_lines(row["response"]) or [], int(row["split"])
        big_l = len(l1)
        for i in range(min(k + 1, big_l)):   # lines reached while copying; the split came at k
            kind = line_kind(*l1[i], world)
            side = "right" if kind is None else "wrong"
            if i >= 1:   # line 0 is always copied (k >= 1); after that k is uniform on 1..L-1
                split_obs[side] += i == k
                split_exp[side] += 1.0 / (big_l - i)
            if i == k or i >= len(l2):
                break
            seen[side] += 1
            if kind in kind_n:
                kind_n[kind] += 1
            if l2[i] != l1[i]:
                differ[side] += 1
                if kind in kind_over:
                    kind_over[kind] += 1
                break   # past the first difference the two chains no longer line up
    div = lambda x, y: float(x / y) if y else float("nan")
    out = {"n_revisions": int(len(b)), "override_rate": div(differ["wrong"], seen["wrong"]),
           "n_copied_wrong": seen["wrong"], "copy_error_rate": div(differ["right"], seen["right"]),
           "n_copied_right": seen["right"],
           "split_ratio_wrong": div(split_obs["wrong"], split_exp["wrong"]),
           "split_ratio_right": div(split_obs["right"], split_exp["right"])}
    out.update({f"override_rate_{k}": div(kind_over[k], kind_n[k]) for k in LINE_KINDS})
    return out


def measure_world(generator, task, problems: Sequence, params, *, words: Sequence[str] = RETRY_WORDS,
                  n_boot: int = 1000, seed: int = 0) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The measured half of the world card on `problems` (held out) with `params.n` samples
    (the records carry the error labels `run_episodes` gives every attempt of a toy task).

    Returns (card, records by name): the card holds greedy and T=1 accuracy, error-kind shares,
    per retry word its Δ with CI, behaviour shares, copy fidelity and transitions by error kind,
    and the oracle-feedback fix rate by error kind."""
    from sclab.generate import SamplingParams
    from sclab.metrics import metrics_with_ci
    from sclab.rollout import run_episodes

    world = task.world
    greedy = run_episodes(generator, task, problems, strategy="retry", turns=1,
                          params=SamplingParams(**{**params.__dict__, "n": 1, "temperature": 0.0}))
    card = {"knobs": knobs(world), "n_problems": len(problems), "n_samples": params.n,
            "greedy_acc": float(greedy["correct"].mean()), "greedy_error_shares": error_shares(greedy)}
    recs = {"greedy": greedy}
    for word in words:
        df = run_episodes(generator, task, problems, strategy=WORD_STRATEGY[word], turns=2, params=params)
        recs[word] = df
        m = metrics_with_ci(df, n_boot=n_boot, seed=seed)
        if "t1_acc" not in card:
            card.update(t1_acc=m["acc_t1"], t1_acc_lo=m["acc_t1_lo"], t1_acc_hi=m["acc_t1_hi"],
                        t1_error_shares=error_shares(df))
        kt = kind_table(df, n_boot=n_boot, seed=seed)
        card[word] = {**{k: m[k] for k in ("delta", "delta_lo", "delta_hi", "delta_i2c", "delta_c2i", "cl", "cs",
                                           "acc_t2", "answer_changed_rate")},
                      "behaviour": behaviour_shares(df), "copy": copy_fidelity(df, world),
                      "fix_rate_by_kind": {g: kt.loc[g, "p_right_t2"] for g in kt.index if g != "right"},
                      "keep_right": float(kt.loc["right", "p_right_t2"]) if "right" in kt.index else float("nan")}
    fb = run_episodes(generator, task, problems, strategy="oracle-feedback", stop="oracle", turns=2, params=params)
    recs["oracle-feedback"] = fb
    kt = kind_table(fb, n_boot=n_boot, seed=seed)
    card["oracle_fix_rate"] = float(kt.drop(index="right", errors="ignore").eval("n * p_right_t2").sum()
                                    / max(1, kt.drop(index="right", errors="ignore")["n"].sum()))
    card["oracle_fix_rate_by_kind"] = {g: {"fix": kt.loc[g, "p_right_t2"], "lo": kt.loc[g, "p_right_t2_lo"],
                                           "hi": kt.loc[g, "p_right_t2_hi"], "n": int(kt.loc[g, "n"])}
                                       for g in kt.index if g != "right"}
    return card, recs


def format_card(card: dict, build: dict | None = None) -> str:
    """The world card as text (what `sclab toy info` prints)."""
    k = card.get("knobs", knobs())
    lines = ["toy world card", "", "knobs:"]
    lines += [f"  {name:<22} {value}" for name, value in k.items()]
    if build:
        lines += ["", f"build: {build.get('wall_s')} s, {build.get('steps')} steps "
                      f"({build.get('single_steps')} single-attempt), {build.get('params')} parameters, "
                      f"fingerprint {build.get('fingerprint')}"]
    if "greedy_acc" not in card:
        return "\n".join(lines)
    pct = lambda d: ", ".join(f"{n} {v:.0%}" for n, v in d.items() if v)
    lines += ["", f"measured on {card['n_problems']} held-out problems x {card['n_samples']} samples:",
              f"  greedy accuracy        {card['greedy_acc']:.3f}   (errors: {pct(card['greedy_error_shares'])})",
              f"  T=1 first attempts     {card['t1_acc']:.3f} [{card['t1_acc_lo']:.3f}, {card['t1_acc_hi']:.3f}]"
              f"   (wrong ones: {pct(card['t1_error_shares'])})", "",
              "  retry word   Δ [95% CI]                  i→c    c→i    keep/revise/fresh   override  split wrong/right"]
    for word in RETRY_WORDS:
        if word not in card:
            continue
        w = card[word]
        b, c = w["behaviour"], w["copy"]
        lines.append(f"  {word:<12} {w['delta']:+.3f} [{w['delta_lo']:+.3f}, {w['delta_hi']:+.3f}]"
                     f"       {w['delta_i2c']:.3f}  {w['delta_c2i']:.3f}  "
                     f"{b['keep']:.2f}/{b['revise']:.2f}/{b['solve']:.2f}      {c['override_rate']:.3f}     "
                     f"{c['split_ratio_wrong']:.2f}/{c['split_ratio_right']:.2f}")
    fx = card.get("oracle_fix_rate_by_kind", {})
    lines += ["", f"  oracle feedback ('wrong') fix rate {card.get('oracle_fix_rate', float('nan')):.3f}; by kind: "
              + ", ".join(f"{g} {v['fix']:.2f} (n={v['n']})" for g, v in fx.items())]
    return "\n".join(lines)


def cached_card(name: str = "arith", n_problems: int = 1000, n_samples: int = 2, measure: bool = False,
                seed: int = 0, model_dir: Path | None = None) -> dict:
    """The world card of toy model `name` (the weights in `model_dir`, default the shipped or
    cached build): its knobs, and - measured once on `n_problems` held-out problems x
    `n_samples` - its measured effects, cached as `world_card-<weights>-....json` beside the
    weights (shipped cards are read from the package; new ones are written to the local cache).
    With `measure=False` an unmeasured card holds the knobs only."""
    import json

    from sclab.toy.build import built_path, toy_model_path, weights_sha256
    from sclab.toy.registry import TOY_MODELS

    model_dir = Path(model_dir) if model_dir is not None else toy_model_path(name)
    file = f"world_card-{weights_sha256(model_dir)[:12]}-{n_problems}x{n_samples}-seed{seed}.json"
    for folder in dict.fromkeys([model_dir, built_path(name)]):
        if (folder / file).exists():
            return json.loads((folder / file).read_text())
    world = TOY_MODELS[name].world
    if not measure:
        return {"knobs": knobs(world)}
    from sclab.generate import Generator, SamplingParams
    from sclab.models import load
    from sclab.toy.world import ArithTask

    lm, tok = load(str(model_dir))
    task = ArithTask(world)
    card, _ = measure_world(Generator(lm, tok, batch_size=64), task, task.problems(n_problems, seed=seed),
                            SamplingParams(n=n_samples, temperature=1.0, max_new_tokens=160, seed=seed), seed=seed)
    out = built_path(name)
    out.mkdir(parents=True, exist_ok=True)
    (out / file).write_text(json.dumps(card, indent=1, default=float))
    return card


def card_differences(card: dict, other: dict, tol: float = 0.0) -> list[str]:
    """The measured figures in which two world cards differ by more than `tol` (dotted keys,
    `a -> b`), e.g. the shipped reference build against a local rebuild."""
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[prefix + k] = float(v)
        return out

    a, b = flat(card), flat(other)
    return [f"{k}: {a[k]:.4g} -> {b[k]:.4g}" for k in sorted(a.keys() & b.keys())
            if not (a[k] == b[k] or abs(a[k] - b[k]) <= tol)]
