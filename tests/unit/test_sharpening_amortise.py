"""sclab.sharpening.amortise's pure parts: best-of-N picks that read no grade, the SFT set's format and
its held-out guard, the KL coefficient that makes GRPO's expected update stop at π_base^(1+1/β), and the
exponent fit on synthetic base^γ marginals."""
import itertools

import numpy as np
import pandas as pd
import pytest

from sclab.rollout import first_turn
from sclab.sharpening import fit_exponent, kl_coefficient, sft_dataset, sft_picks
from sclab.toy.world import ArithTask

pytestmark = pytest.mark.unit
TASK = ArithTask()


def toy_pool(n_problems=6, n=8, seed=0, levels=None):
    """A pool as sample_pool writes it, with grades, answers and labels beside the rewards.
    `levels` draws rewards from a few values (many ties)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_problems):
        for s in range(n):
            r = float(rng.choice(levels)) if levels is not None else float(rng.normal(-5, 2))
            rows.append({"problem_id": f"p{i}", "sample": s, "turn": 1, "response": f"resp {i}.{s}",
                         "self_reward": r, "self_reward_mean": r / 10, "correct": bool(rng.random() < 0.5),
                         "extracted": str(rng.integers(13)), "gold": str(rng.integers(13)),
                         "error_kind": rng.choice(["slip", None])})
    return pd.DataFrame(rows)


def brute_force_picks(pool, N, reward="self_reward"):
    """argmax of the reward among samples 0..N-1 of each problem (no ties in the pool)."""
    out = {}
    for pid, g in pool.groupby("problem_id"):
        g = g[g["sample"] < N]
        out[pid] = int(g.loc[g[reward].idxmax(), "sample"])
    return out


@pytest.mark.parametrize("N", [1, 3, 8, None])
def test_picks_are_the_top_reward_among_the_first_n(N):
    pool = toy_pool().sample(frac=1.0, random_state=1)   # rows in any order: "first N" is by sample index
    got = sft_picks(pool, N)
    assert dict(zip(got["problem_id"], got["sample"])) == brute_force_picks(pool, N or 8)
    assert (got["n"] == (N or 8)).all() and (got["n_tied"] == 1).all()
    picked = pool.set_index(["problem_id", "sample"]).loc[list(zip(got["problem_id"], got["sample"]))]
    assert got["response"].tolist() == picked["response"].tolist()
    # the ablation column ranks by its own values (here r/10, so the same picks)
    assert sft_picks(pool, N, reward="self_reward_mean")["sample"].tolist() == got["sample"].tolist()


def test_picks_do_not_move_with_grades_gold_or_labels():
    pool = toy_pool(n_problems=20, levels=[-1.0, -2.0, -3.0])   # ties too: the tie-break must not read them either
    rng = np.random.default_rng(5)
    shuffled = pool.assign(**{c: rng.permutation(pool[c].to_numpy()) for c in ("correct", "extracted", "gold",
                                                                                 "error_kind")})
    assert (shuffled["correct"] != pool["correct"]).mean() > 0.3
    bare = pool[["problem_id", "sample", "response", "self_reward"]]   # nothing but what a pick may read
    for N in (2, 5, 8):
        ref = sft_picks(pool, N, seed=3)
        assert ref.equals(sft_picks(shuffled, N, seed=3))
        assert ref.equals(sft_picks(bare, N, seed=3))


def test_ties_are_broken_uniformly_and_never_below_the_top():
    pool = pd.DataFrame({"problem_id": "a", "sample": range(6), "response": list("uvwxyz"),
                         "self_reward": [-1.0, -3.0, -1.0, -1.0, -2.0, -1.0]})   # 0, 2, 3, 5 tie at the top
    counts = pd.Series([int(sft_picks(pool, seed=s)["sample"].iloc[0]) for s in range(1000)]).value_counts()
    assert set(counts.index) == {0, 2, 3, 5}
    assert counts.min() > 250 - 55 and counts.max() < 250 + 55   # ±55 ≈ 4 binomial sd (13.7) of 250
    assert sft_picks(pool, seed=7).equals(sft_picks(pool, seed=7))                  # a seed fixes the pick
    assert sft_picks(pool, N=2)["sample"].tolist() == [0]                            # among 0, 1 only 0 is top


def test_a_problems_tie_break_does_not_depend_on_other_problems():
    pool = toy_pool(n_problems=4, levels=[-1.0, -2.0])
    other = pool.copy()
    other.loc[other["problem_id"] == "p0", "self_reward"] = np.arange(8.0)  # p0: no ties any more
    a, b = sft_picks(pool, seed=11), sft_picks(other, seed=11)
    assert a[a.problem_id != "p0"].equals(b[b.problem_id != "p0"])


@pytest.mark.parametrize("change, match", [
    (lambda df: df.drop(columns="response"), "lacks column"),
    (lambda df: df.assign(self_reward=np.where(df["sample"] == 3, np.nan, df["self_reward"])), "missing"),
    (lambda df: df.assign(turn=2), "turns other than 1"),
    (lambda df: pd.concat([df, df.iloc[:1]]), "appears twice"),
])
def test_bad_pools_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        sft_picks(change(toy_pool()))


@pytest.mark.parametrize("N", [0, -1, 2.5, 9])
def test_bad_n_is_refused(N):
    with pytest.raises(ValueError, match="N"):
        sft_picks(toy_pool(), N)


def test_sft_dataset_is_the_pools_prompt_and_the_pick():
    train = TASK.problems(5, split="train", seed=0)
    pool = pd.DataFrame([{"problem_id": p.id, "sample": s, "response": f"{p.meta['solution']} #{s}",
                          "self_reward": -float((s - 1) ** 2)} for p in train for s in range(3)])   # sample 1 wins
    ds = sft_dataset(sft_picks(pool), TASK, train, held_out=TASK.problems(50, split="test", seed=0))
    assert len(ds) == 5 and set(ds.column_names) == {"prompt", "completion", "problem_id"}
    by_id = {p.id: p for p in train}
    for ex in ds:
        assert ex["prompt"] == first_turn(by_id[ex["problem_id"]], TASK)   # the conversation the pool sampled
        assert ex["completion"] == [{"role": "assistant", "content": by_id[ex["problem_id"]].meta["solution"] + " #1"}]


def test_sft_dataset_refuses_held_out_overlap_and_unknown_problems():
    train = TASK.problems(4, split="train", seed=0)
    picks = pd.DataFrame({"problem_id": [p.id for p in train], "response": "x"})
    with pytest.raises(ValueError, match="held_out shares 1"):
        sft_dataset(picks, TASK, train, held_out=[train[2]])
    renamed = [type(train[0])(id="other", question=train[1].question, gold=train[1].gold)]
    with pytest.raises(ValueError, match="held_out shares 1"):   # the same question under another id
        sft_dataset(picks, TASK, train, held_out=renamed)
    with pytest.raises(ValueError, match="not among `problems`"):
        sft_dataset(picks, TASK, train[:3])
    with pytest.raises(ValueError, match="empty"):
        sft_dataset(picks.iloc[:0], TASK, train)
    with pytest.raises(ValueError, match="sft_picks"):
        sft_dataset(picks.drop(columns="response"), TASK, train)


def expected_grpo_step(theta, log_base, kl, G):
    """The expected gradient of TRL's GRPO loss (scale_rewards='none': advantage = r - group mean; KL the
    bias-corrected k3, whose gradient is Σ π (log π - log π_ref) ∇log π) for a softmax bandit with
    r = log π_base, by enumerating every group of G draws."""
    pi = np.exp(theta - theta.max())
    pi /= pi.sum()
    K = len(pi)
    score = np.eye(K) - pi                          # ∇_θ log π(y), one row per y
    pg = np.zeros(K)
    for group in itertools.product(range(K), repeat=G):
        p = np.prod(pi[list(group)])
        r = log_base[list(group)]
        pg += p * ((r - r.mean())[:, None] * score[list(group)]).sum(0) / G
    kl_grad = (pi * (np.log(pi) - log_base)) @ score
    return pg - kl * kl_grad, pi


@pytest.mark.parametrize("beta, G", [(1.0, 4), (0.5, 3), (2.0, 2)])
def test_the_kl_coefficient_makes_grpos_fixed_point_the_tilt(beta, G):
    # the expected update is the gradient of (G-1)/G·E[r] - kl·KL(π‖π_base), strictly concave in π:
    # where it vanishes is the optimum, so a zero step at base^γ locates it
    base = np.array([0.6, 0.3, 0.1])
    tilt = lambda g: np.log(base ** g / (base ** g).sum())
    corrected, plain = 1 + 1 / beta, 1 + (G - 1) / (G * beta)   # TRL's beta = β: the group mean's bias shows
    for kl, at, off in ((kl_coefficient(beta, G), corrected, plain), (beta, plain, corrected)):
        assert np.abs(expected_grpo_step(tilt(at), np.log(base), kl, G)[0]).max() < 1e-12
        assert np.abs(expected_grpo_step(tilt(off), np.log(base), kl, G)[0]).max() > 1e-3


@pytest.mark.parametrize("beta, G", [(0.0, 4), (-1.0, 4), (float("nan"), 4), (float("inf"), 4), (1.0, 1), (1.0, 2.0)])
def test_bad_kl_inputs_are_refused(beta, G):
    with pytest.raises(ValueError, match="beta|num_generations"):
        kl_coefficient(beta, G)


def synthetic_marginals(gamma, n_problems=30, n_lines=6, p=13, noise=0.0, seed=0):
    """Line marginals of a base (Dirichlet draws, peaked like the toy's) and of base^γ renormalised,
    with optional log-normal noise on the tuned probabilities."""
    rng = np.random.default_rng(seed)
    rows_b, rows_t = [], []
    for i in range(n_problems):
        for line in range(n_lines):
            b = rng.dirichlet(np.full(p, 0.3))
            t = b ** gamma * np.exp(noise * rng.normal(size=p))
            t /= t.sum()
            for v in range(p):
                rows_b.append({"problem_id": f"q{i}", "line": line, "value": v, "logprob": np.log(b[v])})
                rows_t.append({"problem_id": f"q{i}", "line": line, "value": v, "logprob": np.log(t[v])})
    return pd.DataFrame(rows_b), pd.DataFrame(rows_t)


@pytest.mark.parametrize("gamma", [0.7, 1.0, 2.0, 3.0])
def test_fit_exponent_recovers_a_known_gamma(gamma):
    base, tuned = synthetic_marginals(gamma)
    fit = fit_exponent(base, tuned, beta=0.5, n_boot=200)
    assert fit["gamma"] == pytest.approx(gamma, abs=1e-9)
    assert fit["gamma_lo"] == pytest.approx(gamma, abs=1e-9) and fit["gamma_hi"] == pytest.approx(gamma, abs=1e-9)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-12)
    assert fit["predicted"] == 3.0 and fit["n_problems"] == 30
    kept = np.exp(base["logprob"]) >= 0.05                      # every kept value but each line's top
    assert fit["n_entries"] == kept.sum() - 30 * 6


def test_fit_exponent_under_noise_and_its_interval():
    base, tuned = synthetic_marginals(2.0, n_problems=60, noise=0.3, seed=1)
    fit = fit_exponent(base, tuned, n_boot=500)
    assert fit["gamma_lo"] < 2.0 < fit["gamma_hi"] and fit["gamma_lo"] < fit["gamma"] < fit["gamma_hi"]
    assert 0.8 < fit["r2"] < 1.0 and np.isnan(fit["predicted"])
    # the bootstrap resamples problems: the interval is that of the per-problem sums, recomputed here
    from sclab.metrics.bootstrap import draws
    m = base.merge(tuned, on=["problem_id", "line", "value"], suffixes=("_b", "_t"))
    g = m.groupby(["problem_id", "line"])
    top = m.loc[g["logprob_b"].idxmax()].set_index(["problem_id", "line"])
    x = m["logprob_b"] - top.loc[list(zip(m.problem_id, m.line)), "logprob_b"].to_numpy()
    y = m["logprob_t"] - top.loc[list(zip(m.problem_id, m.line)), "logprob_t"].to_numpy()
    k = (x < 0) & (np.exp(m["logprob_b"]) >= 0.05)   # the default min_prob
    s = pd.DataFrame({"pid": m.problem_id[k], "xy": (x * y)[k], "xx": (x * x)[k]}).groupby("pid").sum()
    assert fit["gamma"] == pytest.approx(s.xy.sum() / s.xx.sum())
    d = draws(len(s), 500, 0)
    boot = s.xy.to_numpy()[d].sum(1) / s.xx.to_numpy()[d].sum(1)
    assert (fit["gamma_lo"], fit["gamma_hi"]) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))


def test_fit_exponent_does_not_depend_on_row_order():
    base, tuned = synthetic_marginals(2.0, noise=0.3, seed=2)
    ref = fit_exponent(base, tuned, beta=1.0, n_boot=100)
    shuffled = fit_exponent(base.sample(frac=1.0, random_state=0), tuned.sample(frac=1.0, random_state=1), beta=1.0,
                            n_boot=100)
    assert shuffled == pytest.approx(ref)


def test_fit_exponent_ignores_the_tails_and_the_normaliser():
    base, tuned = synthetic_marginals(2.0)
    tails = np.exp(base["logprob"]) < 0.05
    messy = tuned.assign(logprob=np.where(tails, -50.0, tuned["logprob"]))   # the tails anything at all
    messy["logprob"] -= messy["line"] * 0.1                                   # and each line unnormalised
    assert fit_exponent(base, messy, n_boot=50)["gamma"] == pytest.approx(2.0, abs=1e-9)
    assert fit_exponent(base, messy, min_prob=1e-3, n_boot=50)["gamma"] > 3.0   # a lower threshold reads them


def test_fit_exponent_refuses_bad_inputs():
    base, tuned = synthetic_marginals(2.0, n_problems=3)
    with pytest.raises(ValueError, match="different"):
        fit_exponent(base, tuned[tuned.problem_id != "q0"])
    with pytest.raises(ValueError, match="line_marginals table"):
        fit_exponent(base.drop(columns="line"), tuned)
    with pytest.raises(ValueError, match="finite"):
        fit_exponent(base, tuned.assign(logprob=-np.inf))
    with pytest.raises(ValueError, match="min_prob"):
        fit_exponent(base, tuned, min_prob=0.0)
    with pytest.raises(ValueError, match="beta"):
        fit_exponent(base, tuned, beta=0.0)
    one_hot = base.assign(logprob=np.where(base["value"] == 0, 0.0, -30.0))   # nothing but the top has mass
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_exponent(one_hot, one_hot)
