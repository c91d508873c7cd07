"""Figures and displays that notebooks share: token-by-token views, the 2x2 transition matrix,
metric tables with confidence intervals.

    >>> from sclab.plots import transition_matrix
    >>> import pandas as pd
    >>> transition_matrix(pd.DataFrame({"problem_id": [0, 0], "sample": [0, 0], "turn": [1, 2], "correct": [False, True]})).values.tolist()
    [[0.0, 1.0], [0.0, 0.0]]
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from sclab.records import pairs


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
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
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


def ci_table(metrics: dict, keys: list[str], digits: int = 3) -> pd.DataFrame:
    """A table of metric values with their `_lo`/`_hi` confidence bounds, one row per key."""
    rows = []
    for k in keys:
        v = metrics.get(k)
        lo, hi = metrics.get(f"{k}_lo"), metrics.get(f"{k}_hi")
        rows.append({"metric": k, "value": round(v, digits) if v is not None else None,
                     "95% CI": f"[{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else ""})
    return pd.DataFrame(rows).set_index("metric")
