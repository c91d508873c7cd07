"""Figures and displays that notebooks share: token-by-token views, the 2x2 transition matrix,
metric tables and error bars from confidence intervals, readable metric names, training curves.

Metrics dicts (`sclab.metrics.metrics_with_ci`) hold each CI as `<key>_lo` and `<key>_hi`;
`ci_err` turns them into matplotlib's error bars, `ci_table` and `format_ci` into text.

    >>> from sclab.plots import transition_matrix
    >>> import pandas as pd
    >>> transition_matrix(pd.DataFrame({"problem_id": [0, 0], "sample": [0, 0], "turn": [1, 2], "correct": [False, True]})).values.tolist()
    [[0.0, 1.0], [0.0, 0.0]]
"""
from __future__ import annotations

import html
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sclab.records import pairs

# readable names of metrics, for axes and legends (a key not listed is shown as it is)
METRIC_LABELS = {
    "acc_t1": "Acc@t1", "acc_t2": "Acc@t2", "delta": "Δ", "delta_i2c": "Δi→c", "delta_c2i": "Δc→i",
    "cl": "CL", "cs": "CS", "rss": "RSS", "answer_changed_rate": "answer changed",
    "acc_parallel": "fresh attempt 1\n(parallel sample)", "keep_right": "keeps a right\nattempt 1",
    "fix_wrong": "fixes a wrong\nattempt 1", "acc_t2_gold": "Acc@t2 after a\ngold attempt 1",
    "acc_t2_swap": "Acc@t2 after another\nproblem's attempt 1",
}


def label(key: str) -> str:
    """The readable name of a metric key (`METRIC_LABELS`), or the key itself.

    >>> label("delta_c2i"), label("n_problems")
    ('Δc→i', 'n_problems')
    """
    return METRIC_LABELS.get(key, key)


def error_bars(values, lo, hi) -> np.ndarray:
    """matplotlib's `yerr`/`xerr` (2 x N: the distance down to each lower bound, up to each upper
    one). A bound on the wrong side of its value gives 0, not a negative length: a percentile
    interval can miss its own point estimate when the resampled metric is skewed.

    >>> error_bars([0.5, 0.2], [0.4, 0.25], [0.7, 0.3]).round(2).tolist()
    [[0.1, 0.0], [0.2, 0.1]]
    """
    v = np.asarray(values, dtype=float)
    return np.vstack([np.maximum(v - np.asarray(lo, dtype=float), 0), np.maximum(np.asarray(hi, dtype=float) - v, 0)])


def ci_err(metrics, key, lo: str | None = None, hi: str | None = None) -> np.ndarray:
    """`error_bars` from `<key>_lo` and `<key>_hi` (or the keys / columns named `lo` and `hi`): of
    `key` in each of a sequence of metrics dicts or each row of a DataFrame, or of each key in a
    list `key` of one metrics dict.

    >>> ci_err([{"cl": 0.5, "cl_lo": 0.4, "cl_hi": 0.7}, {"cl": 0.9, "cl_lo": 0.8, "cl_hi": 1.0}], "cl").round(2).tolist()
    [[0.1, 0.1], [0.2, 0.1]]
    >>> ci_err({"cl": 0.5, "cl_lo": 0.4, "cl_hi": 0.7, "cs": 0.2, "cs_lo": 0.1, "cs_hi": 0.3}, ["cl", "cs"]).round(2).tolist()
    [[0.1, 0.1], [0.2, 0.1]]
    """
    if not isinstance(key, str):  # several keys of one dict
        return np.hstack([ci_err(metrics, k) for k in key]) if len(key) else np.zeros((2, 0))
    lo, hi = lo or f"{key}_lo", hi or f"{key}_hi"
    if isinstance(metrics, pd.DataFrame):
        return error_bars(metrics[key], metrics[lo], metrics[hi])
    rows = [metrics] if isinstance(metrics, Mapping) else list(metrics)
    return error_bars([r[key] for r in rows], [r[lo] for r in rows], [r[hi] for r in rows])


def format_ci(metrics: Mapping, key: str, digits: int = 3) -> str:
    """A signed value and its CI as text.

    >>> format_ci({"delta": 0.012, "delta_lo": -0.003, "delta_hi": 0.02}, "delta")
    '+0.012 [-0.003, +0.020]'
    """
    return f"{metrics[key]:+.{digits}f} [{metrics[key + '_lo']:+.{digits}f}, {metrics[key + '_hi']:+.{digits}f}]"


def ci_sign(metrics: Mapping, key: str = "delta", covers: str = "its interval covers 0") -> str:
    """Where a CI lies against 0: "above 0", "below 0", or `covers`.

    >>> ci_sign({"delta": 0.03, "delta_lo": 0.01, "delta_hi": 0.05}), ci_sign({"delta": 0.0, "delta_lo": -0.01, "delta_hi": 0.01})
    ('above 0', 'its interval covers 0')
    """
    return "above 0" if metrics[key + "_lo"] > 0 else "below 0" if metrics[key + "_hi"] < 0 else covers


def group_identical(results: Mapping[str, Mapping], names: Sequence[str], keys: Sequence[str],
                    digits: int = 6) -> dict[tuple, list[str]]:
    """Names whose metrics agree on `keys` (to `digits`), grouped: one point and one legend entry
    per group where several strategies give the same episodes (on the toy world, strategies that
    share a retry word), instead of points drawn over each other.

    >>> group_identical({"a": {"cl": 0.5}, "b": {"cl": 0.5}, "c": {"cl": 0.7}}, ["a", "b", "c"], ["cl"])
    {(0.5,): ['a', 'b'], (0.7,): ['c']}
    """
    groups: dict[tuple, list[str]] = {}
    for n in names:
        groups.setdefault(tuple(round(results[n][k], digits) for k in keys), []).append(n)
    return groups


def transition_matrix(df: pd.DataFrame, t1: int = 1, t2: int = 2) -> pd.DataFrame:
    """Fractions of all (problem, sample) pairs: rows = turn t1 (wrong, right), cols = turn t2."""
    p = pairs(df, t1, t2)
    m = np.zeros((2, 2))
    for x, y in zip(p["correct_1"].astype(bool), p["correct_2"].astype(bool)):
        m[int(x), int(y)] += 1
    m /= len(p)
    labels = ["incorrect", "correct"]
    return pd.DataFrame(m, index=[f"turn {t1} {l}" for l in labels], columns=[f"turn {t2} {l}" for l in labels])


def plot_transitions(df: pd.DataFrame, t1: int = 1, t2: int = 2, title: str | None = None, ax=None):
    """Heatmap of the 2x2 transition: the off-diagonal cells are Δi→c (bottom-left to top-right
    reads wrong→right) and Δc→i."""
    import matplotlib.pyplot as plt

    m = transition_matrix(df, t1, t2)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(m.values, cmap="Blues", vmin=0, vmax=max(0.01, m.values.max()))
    names = [["stays wrong", "wrong → right (Δi→c)"], ["right → wrong (Δc→i)", "stays right"]]
    for i in range(2):
        for j in range(2):
            v = m.values[i, j]
            ax.text(j, i, f"{v:.1%}\n{names[i][j]}", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 * m.values.max() else "black")
    ax.set_xticks([0, 1], ["incorrect", "correct"])
    ax.set_yticks([0, 1], ["incorrect", "correct"])
    ax.set_xlabel(f"attempt {t2}")
    ax.set_ylabel(f"attempt {t1}")
    ax.set_title(title or f"transitions attempt {t1} → {t2}")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label="fraction of all samples")
    ax.figure.tight_layout()
    return ax.figure


def show_tokens(completion, tokenizer, max_tokens: int = 400) -> str:
    """HTML: each generated token shaded by its probability under the model (white = sure, red =
    unlikely), with the probability on hover. Returns the HTML (display it with IPython.display.HTML)."""
    spans = []
    for tid, lp in list(zip(completion.token_ids, completion.token_logprobs))[:max_tokens]:
        tok = tokenizer.convert_ids_to_tokens(int(tid))
        p = math.exp(lp)
        red = int(255 * (1 - p))
        spans.append(f'<span title="p={p:.3f}" style="background: rgb(255,{255 - red},{255 - red}); '
                     f'padding: 1px 2px; margin: 1px; border-radius: 3px; font-family: monospace">'
                     f'{html.escape(tok)}</span>')
    return "<div style='line-height: 2'>" + "".join(spans) + "</div>"


def _is_signed(key: str) -> bool:
    return key.startswith("delta") or "_minus_" in key  # differences: Δ, Δi→c, seq_minus_parallel


def ci_table(metrics: Mapping, keys: Sequence[str], digits: int = 3, *, ci: Sequence[str] | None = None) -> pd.DataFrame:
    """Metric values with their `_lo`/`_hi` confidence bounds.

    One metrics dict: a row per key, its value and its 95% CI. A dict of named metrics dicts
    (methods, strategies): a row per name and a column per key, each cell the value as text —
    signed for differences (`delta*`, `*_minus_*`) — followed by its CI for the keys in `ci`
    (default: every key with bounds); a key that a name lacks is left empty.

    >>> m = {"acc_t1": 0.61, "acc_t1_lo": 0.58, "acc_t1_hi": 0.64, "delta": 0.02, "delta_lo": -0.01, "delta_hi": 0.05}
    >>> t = ci_table(m, ["acc_t1"]); float(t.loc["acc_t1", "value"]), t.loc["acc_t1", "95% CI"]
    (0.61, '[0.580, 0.640]')
    >>> ci_table({"base": m}, ["acc_t1", "delta"], ci=["delta"]).loc["base"].tolist()
    ['0.610', '+0.020 [-0.010, +0.050]']
    """
    if metrics and all(isinstance(v, Mapping) for v in metrics.values()):
        rows = {}
        for name, m in metrics.items():
            cells = {}
            for k in (k for k in keys if k in m):
                f = f"+.{digits}f" if _is_signed(k) else f".{digits}f"
                shown = f"{k}_lo" in m and f"{k}_hi" in m and (ci is None or k in ci)
                cells[k] = f"{m[k]:{f}}" + (f" [{m[k + '_lo']:{f}}, {m[k + '_hi']:{f}}]" if shown else "")
            rows[name] = cells
        return pd.DataFrame(rows).T
    rows = []
    for k in keys:
        v = metrics.get(k)
        lo, hi = metrics.get(f"{k}_lo"), metrics.get(f"{k}_hi")
        rows.append({"metric": k, "value": round(v, digits) if v is not None else None,
                     "95% CI": f"[{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else ""})
    return pd.DataFrame(rows).set_index("metric")


def plot_training_curves(logs: Sequence[pd.DataFrame], title: str, n_problems: int):
    """The held-out evaluations logged during RL (`sclab.train.score.score_train`'s `eval_*`
    columns): Acc@t1, Acc@t2 and Δ (left), the answer-changed rate and Δc→i (right). Several
    logs (stage I, stage II) are drawn one after the other, a dotted line between them."""
    import matplotlib.pyplot as plt

    parts, offset = [], 0
    for lg in logs:
        ev = lg.dropna(subset=["eval_acc_t1"]).copy()
        ev["step"] += offset
        parts.append(ev)
        offset = ev["step"].max()
    ev = pd.concat(parts)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for k, lab in [("eval_acc_t1", "Acc@t1"), ("eval_acc_t2", "Acc@t2"), ("eval_delta", "Δ(t1,t2)")]:
        axes[0].plot(ev["step"], ev[k], marker="o", label=lab)
    axes[0].axhline(0, color="grey", lw=0.5)
    axes[1].plot(ev["step"], ev["eval_changed"], marker="o", color="C3", label="answer changed")
    axes[1].plot(ev["step"], ev["eval_delta_c2i"], marker="o", color="C4", label="Δc→i")
    for ax in axes:
        if len(logs) > 1:
            ax.axvline(logs[0]["step"].max(), color="k", ls=":", lw=1)
        ax.set_xlabel("RL step"); ax.legend()
    axes[0].set_ylabel("accuracy, Δ")
    axes[1].set_ylabel("fraction of samples")
    axes[0].set_title(f"{title}: accuracy on {n_problems} held-out problems")
    axes[1].set_title("answer-changed rate and c→i")
    fig.tight_layout()
    return fig
