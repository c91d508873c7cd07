"""sclab.plots on hand-made records: the transition matrix, its heatmap, the CI table, the token view."""
import math

import matplotlib

matplotlib.use("Agg")  # no display: figures are drawn off screen

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sclab.metrics import correction_metrics  # noqa: E402
from sclab.plots import ci_table, plot_transitions, show_tokens, transition_matrix  # noqa: E402

pytestmark = pytest.mark.unit

# (problem, sample) -> correct at turns 1, 2, 3. Turns 1 -> 2 of the 8 pairs: wrong -> wrong 2 (A0, D1),
# wrong -> right 2 (A1, B0), right -> wrong 1 (B1), right -> right 3 (C0, C1, D0).
# Turns 2 -> 3: the right ones stay right except C0; the wrong ones stay wrong except A0.
PAIRS = {("A", 0): (0, 0, 1), ("A", 1): (0, 1, 1), ("B", 0): (0, 1, 1), ("B", 1): (1, 0, 0),
         ("C", 0): (1, 1, 0), ("C", 1): (1, 1, 1), ("D", 0): (1, 1, 1), ("D", 1): (0, 0, 0)}
HAND = pd.DataFrame([{"problem_id": p, "sample": s, "turn": t, "correct": bool(c)}
                     for (p, s), cs in PAIRS.items() for t, c in enumerate(cs, start=1)]
                    ).sample(frac=1, random_state=0).reset_index(drop=True)   # row order must not matter


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_transition_matrix_by_hand():
    m = transition_matrix(HAND)
    assert list(m.index) == ["turn 1 incorrect", "turn 1 correct"]
    assert list(m.columns) == ["turn 2 incorrect", "turn 2 correct"]
    assert m.values.tolist() == [[2 / 8, 2 / 8], [1 / 8, 3 / 8]]
    # turns 2 -> 3: wrong at 2 (A0, B1, D1): A0 fixed; right at 2 (5 pairs): C0 lost
    assert transition_matrix(HAND, 2, 3).values.tolist() == [[2 / 8, 1 / 8], [1 / 8, 4 / 8]]
    assert list(transition_matrix(HAND, 2, 3).columns) == ["turn 3 incorrect", "turn 3 correct"]


def test_off_diagonal_is_correction_metrics_transitions():
    m, c = transition_matrix(HAND), correction_metrics(HAND)
    assert m.iloc[0, 1] == pytest.approx(c["delta_i2c"]) and m.iloc[1, 0] == pytest.approx(c["delta_c2i"])
    assert m.iloc[1].sum() == pytest.approx(c["acc_t1"]) and m.iloc[:, 1].sum() == pytest.approx(c["acc_t2"])


def test_transition_matrix_refuses_a_lost_second_attempt():
    lost = HAND[~((HAND.problem_id == "B") & (HAND["sample"] == 1) & (HAND.turn == 2))]
    with pytest.raises(ValueError, match="'B' sample 1 has a record at turn 1 but none at turn 2"):
        transition_matrix(lost)


def test_plot_transitions_draws_the_matrix():
    fig = plot_transitions(HAND, title="retry")
    ax = fig.axes[0]
    assert len(fig.axes) == 2                                              # the heatmap and its colorbar
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("retry", "attempt 2", "attempt 1")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["incorrect", "correct"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["incorrect", "correct"]
    image = ax.get_images()[0]
    assert image.get_array().tolist() == [[0.25, 0.25], [0.125, 0.375]] and image.get_clim() == (0, 0.375)
    # cells in row-major order: value, what the cell means; white text above 60% of the largest cell (0.225)
    cells = [(t.get_text(), t.get_color()) for t in ax.texts]
    assert cells == [("25.0%\nstays wrong", "white"), ("25.0%\nwrong → right (Δi→c)", "white"),
                     ("12.5%\nright → wrong (Δc→i)", "black"), ("37.5%\nstays right", "white")]


def test_plot_transitions_on_given_axes_with_default_title():
    fig, axes = plt.subplots(1, 2)
    out = plot_transitions(HAND, 2, 3, ax=axes[1])
    assert out is fig and axes[1].get_title() == "transitions attempt 2 → 3" and not axes[0].texts
    assert axes[1].get_xlabel() == "attempt 3" and axes[1].texts[1].get_text().startswith("12.5%")


def test_ci_table():
    metrics = {"acc_t1": 0.61234, "acc_t1_lo": 0.55, "acc_t1_hi": 0.6789, "delta": -0.0123, "delta_lo": -0.05,
               "delta_hi": 0.02, "cl": 0.5}
    t = ci_table(metrics, ["acc_t1", "delta", "cl", "absent"], digits=2)
    assert list(t.index) == ["acc_t1", "delta", "cl", "absent"] and list(t.columns) == ["value", "95% CI"]
    assert t["95% CI"].tolist() == ["[0.55, 0.68]", "[-0.05, 0.02]", "", ""]   # no bounds: no interval
    assert t["value"].tolist()[:3] == [0.61, -0.01, 0.5] and math.isnan(t["value"].iloc[3])   # absent key


class _Tok:
    def convert_ids_to_tokens(self, i):
        return ["<eos>", "7", "a&b"][i]


class _Completion:
    token_ids = [1, 2, 0]
    token_logprobs = [0.0, math.log(0.5), math.log(0.25)]


def test_show_tokens_shades_by_probability_and_escapes():
    out = show_tokens(_Completion(), _Tok())
    # p = 1 is white; p = 0.5 takes int(255 * 0.5) = 127 off green and blue; p = 0.25 takes 191
    assert 'title="p=1.000" style="background: rgb(255,255,255)' in out
    assert 'title="p=0.500" style="background: rgb(255,128,128)' in out
    assert 'title="p=0.250" style="background: rgb(255,64,64)' in out
    assert ">7</span>" in out and ">a&amp;b</span>" in out and ">&lt;eos&gt;</span>" in out
    assert show_tokens(_Completion(), _Tok(), max_tokens=1).count("<span") == 1
