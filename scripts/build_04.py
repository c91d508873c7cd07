"""Writes notebooks/04_critique_models.ipynb (run once; the notebook is what is committed and edited)."""
import nbformat as nbf

cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s.strip()))
code = lambda s, tags=None: cells.append(nbf.v4.new_code_cell(s.strip(), metadata={"tags": tags} if tags else {}))

md(r"""
# 04 · Critique models: can a model judge its own answers, and does a judge make correction work?

This notebook reproduces, on the toy world (and on a real model with a GPU preset), the critique family:

- **Kadavath et al.**, *Language Models (Mostly) Know What They Know*, arXiv 2207.05221 — P(True): the model
  judges a proposed answer ("(A) True / (B) False"), better with brainstormed samples in context; P(IK): predicted
  from the question alone, trained on the model's empirical accuracy.
- **GLoRe** (Havrilla et al.), *Teaching Large Language Models to Reason with Refinement*, arXiv 2402.10963 — an
  outcome verifier (ORM) and a step-level one (SORM) trained on labels from rollouts of the current policy; global
  refinement (question + draft) and local refinement (from the first step the SORM flags), reranked by the ORM
  (LLaMA-2 13B, GSM8K: 53% → 65%, above best-of-3).
- **AutoMathCritique**, arXiv 2411.16579, and **Self-Judge**, arXiv 2402.11253 — a critic's verdict in the loop, and
  a model that answers only where its judge is confident.
- **Generalized Correctness Models**, arXiv 2509.24988 — a model predicts its own correctness no better than another
  model does.

On the toy world every attempt carries the kind of its first wrong line (slip, unsure fact, misconception), and the
exact value of every prefix is known, so each verifier can be scored against the truth it is meant to learn.
Verifiers train on the policy's samples of the **training split**; every number is on held-out problems.
**CPU time** (the `quick` preset, two CPU cores): about 7 minutes with a warm generation cache.
""")

code(r"""
model = "toy:arith"  # toy:<name>, a local path or a hub id
backend = "hf"  # "hf" (transformers, CPU/GPU) or "vllm" (GPU)
task = "arith"  # a name in sclab.tasks.TASKS
seed = 0  # sampling seed: fixes every sample
n_problems = 500  # held-out problems every verifier is scored on
n_samples = 4  # T = 1 samples per held-out problem (the attempts judged)
temperature = 1.0  # the policy's sampling temperature
max_new_tokens = 72  # per attempt; a 12-line toy solution is 62 tokens
batch_size = 64  # rows per generation batch (hf backend)
n_boot = 300  # bootstrap resamples (over problems) for every confidence interval
train_task = "arith"  # verifiers train on this task's train split (never the held-out problems)
train_problems = 300  # training-split problems whose samples the verifiers learn from
train_samples = 8  # samples per training problem (P(IK)'s target is their accuracy)
verifier_steps = 200  # AdamW steps for each verifier (ORM, SORM, P(IK), P(True))
verifier_lr = 0.001  # the verifiers' learning rate
verifier_batch = 32  # rows per verifier step
lora = False  # LoRA adapters on the verifiers' copies (the GPU preset) instead of full fine-tuning
sorm_samples = 1  # samples per training problem whose prefixes get rollout labels
sorm_rollouts = 4  # K: rollouts from each prefix (label = any of them right)
brainstorm = 3  # other samples shown before the proposed answer (0 skips P(True) with brainstorming)
flag_threshold = 0.5  # a step is flagged when its value falls below this
critic_threshold = 0.5  # the ORM critic objects below this confidence
step_stop = ";"  # the text that ends a solution step (the toy's ';', a chat model's newline)
intrinsic_strategy = "cct-critical"  # the intrinsic retry that critique is compared with
other_model = "toy:arith-b"  # GCM's other model (the policy's tokenizer); "" keeps only the fresh network
critique_sft_epochs = 3  # SFT epochs on each arm's data in "critique as training data" (0 skips it)
critique_sft_lr = 0.001  # its learning rate
""", ["parameters"])

md("## Setup")
code(r"""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sclab.critique import (VerdictModel, attempt_rows, auroc_difference, first_flag, likelihood_steps, outcome_rows,
                            pik_rows, predict, ptrue_rows, resume, rollout_labels, signal_table, step_rows, train_value,
                            value_model, verdict_ids, verdict_model)
from sclab.generate import SamplingParams
from sclab.metrics.bootstrap import metrics_with_ci, paired_diff_ci
from sclab.metrics.calibration import apply_platt, platt, reliability, selective_curve
from sclab.plots import format_ci
from sclab.rollout import first_turn, run_episodes
from sclab.runs import record, save_figure, save_records
from sclab.runs.findings import Finding, record_findings
from sclab.runs.setup import load_generator
from sclab.sharpening import sample_pool
from sclab.strategies import Attempt, get_strategy
from sclab.tasks import get_task
from sclab.toy import toy_world

torch.manual_seed(seed)
the_task, train_source = get_task(task), get_task(train_task)
problems = the_task.problems(n_problems, seed=seed)                       # held out: the test split
train = train_source.problems(train_problems, split="train", seed=seed)   # the verifiers' training problems
gen, lm, tok = load_generator(model, backend, batch_size, **({"gpu_memory_utilization": 0.35} if backend == "vllm" else {}))
if lm is None:   # vllm serves the samples; the verifiers train on an hf copy beside it (vllm keeps 35% of the GPU)
    from sclab.models import load
    lm, _ = load(model)
world = toy_world(model)
is_toy = world is not None and getattr(the_task, "world", None) is not None
KINDS = ("slip", "unsure", "misconception") if is_toy else ()
by_id = {p.id: p for p in problems + train}
held_out = {p.id for p in problems}
assert not held_out & {p.id for p in train} and not {p.question for p in problems} & {p.question for p in train}
print(f"{len(train)} training problems x {train_samples} samples; {len(problems)} held-out problems x {n_samples}")
""")

md(r"""
## 1. The policy's samples

The attempts every verifier judges are the policy's own T = 1 samples: `train_samples` per training problem (what
the verifiers learn from) and `n_samples` per held-out problem (what they are scored on). Each sample is graded
by the task's grader and, on the toy world, labelled with the kind of its first wrong line. Its self-reward (log
π(y|x), teacher-forced at T = 1) is the first confidence signal: no training at all.
""")
code(r"""
tr = sample_pool(gen, train_source, train, SamplingParams(n=train_samples, temperature=temperature,
                                                          max_new_tokens=max_new_tokens, seed=seed))
te = sample_pool(gen, the_task, problems, SamplingParams(n=n_samples, temperature=temperature,
                                                         max_new_tokens=max_new_tokens, seed=seed + 1))
A_tr = attempt_rows(gen, train_source, train, tr, step_stop)
A_te = attempt_rows(gen, the_task, problems, te, step_stop)
y_tr = tr.correct.to_numpy().astype(float)
te["n"] = [by_id[i].meta.get("n", len(a.steps)) for i, a in zip(te.problem_id, A_te)]
summary = pd.DataFrame({"samples": [len(tr), len(te)], "accuracy": [tr.correct.mean(), te.correct.mean()],
                        "steps per sample": [np.mean([len(a.steps) for a in A_tr]), np.mean([len(a.steps) for a in A_te])]},
                       index=["training split", "held out"])
if is_toy:
    print("held-out first errors:", te.error_kind.value_counts().to_dict())
summary.round(3)
""")

md(r"""
## 2. Six verifiers and two untrained signals

All verifiers start from a copy of the policy (the policy itself is never changed) and train for `verifier_steps`
AdamW steps on binary cross-entropy:

| signal | reads | trained on |
|---|---|---|
| sequence probability | the attempt (its self-reward, Platt-scaled on the training samples) | nothing |
| prompted P(True) | the verdict token after a verification turn | nothing |
| trained P(True) | the same verdict token | the training samples' grades |
| P(True), brainstorm | the same, with `brainstorm` other samples of the problem first | the same |
| P(IK) | the question alone (the row never holds an answer) | the problem's empirical accuracy over its samples |
| ORM | the attempt's last token | its grade |
| ORM, fresh network | the same, on a freshly initialised network of the same size | the same |
| SORM | every step end and the last token | any of K rollouts of the policy from that prefix is right |

On the toy the verification turn is `confirm <question>` and the verdict words are `same` / `wrong` (the toy's
dialect has no "(A) True"); a chat model gets Kadavath's template. The SORM's labels come from policy rollouts,
graded like any attempt: no label is read off the gold lines.
""")
code(r"""
def fit(vm, rows, name):
    return train_value(vm, rows, steps=verifier_steps, lr=verifier_lr, batch_size=verifier_batch, seed=seed,
                       pad_id=tok.pad_token_id or 0, desc=name)

losses = {}
# ORM: the final token, target = the grade; and the same on a network with none of the policy's weights
orm = value_model(lm, "self", seed=seed, lora=lora)
losses["ORM"] = fit(orm, outcome_rows(A_tr, y_tr), "ORM")
orm_other = None
if is_toy:   # a fresh network of the policy's size: on a billion-parameter model a cost with no meaning (see section 8)
    orm_other = value_model(lm, "random", seed=seed)
    losses["ORM, fresh network"] = fit(orm_other, outcome_rows(A_tr, y_tr), "ORM (fresh network)")

# SORM: rollouts from every step end of sorm_samples samples per problem
sub = tr[tr["sample"] < sorm_samples].reset_index(drop=True)
A_sub = attempt_rows(gen, train_source, train, sub, step_stop)
labels = rollout_labels(gen, train_source, train, A_sub, sub.correct.to_numpy(), k=sorm_rollouts,
                        temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + 2)
sorm = value_model(lm, "self", seed=seed, lora=lora)
losses["SORM"] = fit(sorm, step_rows(A_sub, labels), "SORM")

# P(IK): the question alone, target = the empirical accuracy of the train_samples samples
acc_tr = tr.groupby("problem_id").correct.mean().reindex([p.id for p in train]).to_numpy()
pik = value_model(lm, "self", seed=seed, lora=lora)
losses["P(IK)"] = fit(pik, pik_rows(gen, train_source, train, acc_tr), "P(IK)")

# P(True): prompted (the untrained verdict) and trained, without and with brainstormed samples
yes, no = verdict_ids(tok, the_task.dialect)
def others(df, k):
    pool = df.groupby("problem_id").response.apply(list).to_dict()
    return [[r for j, r in enumerate(pool[pid]) if j != s][:k] for pid, s in zip(df.problem_id, df["sample"])]
pt_tr = dict(problems=[by_id[i] for i in tr.problem_id], answers=list(tr.response))
pt_te = dict(problems=[by_id[i] for i in te.problem_id], answers=list(te.response))
ptrue = verdict_model(lm, yes, no, lora=lora)
losses["trained P(True)"] = fit(ptrue, ptrue_rows(tok, train_source, **pt_tr, correct=y_tr), "P(True)")
if brainstorm:
    ptrue_b = verdict_model(lm, yes, no, lora=lora)
    losses["P(True), brainstorm"] = fit(ptrue_b, ptrue_rows(tok, train_source, **pt_tr, brainstorms=others(tr, brainstorm),
                                                            correct=y_tr), "P(True) + brainstorm")

fig, ax = plt.subplots(figsize=(7, 3.2))
for name, l in losses.items():
    ax.plot(pd.Series(l).rolling(10, min_periods=1).mean(), label=name)
ax.set_xlabel("AdamW step"); ax.set_ylabel("training BCE (rolling mean of 10)"); ax.legend(fontsize=7)
ax.set_title("verifier training"); fig.tight_layout(); save_figure(fig, "verifier_training"); plt.show()
print(f"SORM: {len(labels)} step labels from {len(A_sub)} samples x K = {sorm_rollouts}; positive {labels.label.mean():.3f}")
""")

code(r"""
te["seq_prob"] = apply_platt(te.self_reward, platt(tr.self_reward, tr.correct))   # calibrated on the training samples
if is_toy:   # the toy never says `wrong` as an answer: its untrained verdict is p(same), the keep prior after `confirm`
    pt_rows = ptrue_rows(tok, the_task, **pt_te)
    te["ptrue_prompted"] = [float(np.exp(sc.total)) for sc in gen.score([r.ids for r in pt_rows], [[yes]] * len(pt_rows),
                                                                       desc="prompted P(True)")]
else:        # Kadavath: the mass on (A) normalised over (A) and (B)
    te["ptrue_prompted"] = [p[0] for p in predict(VerdictModel(lm, yes, no), ptrue_rows(tok, the_task, **pt_te), batch_size=8)]
te["ptrue"] = [p[0] for p in predict(ptrue, ptrue_rows(tok, the_task, **pt_te))]
if brainstorm:
    te["ptrue_brainstorm"] = [p[0] for p in predict(ptrue_b, ptrue_rows(tok, the_task, **pt_te,
                                                                       brainstorms=others(te, brainstorm)))]
pik_q = dict(zip([p.id for p in problems], [p[0] for p in predict(pik, pik_rows(gen, the_task, problems))]))
te["pik"] = te.problem_id.map(pik_q)
te["orm"] = [p[-1] for p in predict(orm, outcome_rows(A_te))]
if orm_other is not None:
    te["orm_other"] = [p[-1] for p in predict(orm_other, outcome_rows(A_te))]
sorm_te = predict(sorm, step_rows(A_te))
te["sorm"] = [p[-1] for p in sorm_te]
SIGNALS = {"sequence probability": "seq_prob", "prompted P(True)": "ptrue_prompted", "trained P(True)": "ptrue",
           **({"P(True), brainstorm": "ptrue_brainstorm"} if brainstorm else {}), "P(IK)": "pik", "ORM": "orm",
           **({"ORM, fresh network": "orm_other"} if orm_other is not None else {}), "SORM": "sorm"}
del ptrue, pik   # later sections use only the ORM and SORM: on a GPU each verifier is a copy of the policy
if brainstorm:
    del ptrue_b
if torch.cuda.is_available():
    torch.cuda.empty_cache()
BUCKET = "n" if is_toy else None   # difficulty buckets: the toy's n (a real task has no such label)
table = signal_table(te, SIGNALS, kinds=KINDS, bucket=BUCKET, n_boot=n_boot, seed=seed)
show = ["signal", "auroc", "auroc_lo", "auroc_hi"] + (["auroc_within"] if BUCKET else []) + ["ece", "rms", "brier"] \
    + [f"auroc_{k}" for k in KINDS]
table[show].round(3)
""")

md(r"""
## 3. Which errors can each signal see?

AUROC (right attempts against wrong ones) pooled, **within** a difficulty bucket (the toy's n: pairs of attempts at
problems of the same length only, so telling easy problems from hard ones earns nothing), and against the wrong
attempts of one error kind at a time. ECE uses 10 equal-width bins of the confidence (left-closed; the last also
right-closed), weighted by their share of the attempts.
""")
code(r"""
cols = ["auroc"] + (["auroc_within"] if BUCKET else []) + [f"auroc_{k}" for k in KINDS]
names = {"auroc": "pooled", "auroc_within": "within n", **{f"auroc_{k}": f"vs {k}" for k in KINDS}}
fig, ax = plt.subplots(figsize=(10, 3.8))
w = 0.8 / len(cols)
for j, c in enumerate(cols):
    x = np.arange(len(table)) + (j - (len(cols) - 1) / 2) * w
    ax.bar(x, table[c], w, yerr=[table[c] - table[c + "_lo"], table[c + "_hi"] - table[c]], capsize=2, label=names[c])
ax.axhline(0.5, color="k", lw=0.8, ls=":")
ax.set_xticks(range(len(table))); ax.set_xticklabels(table.signal, rotation=20, ha="right", fontsize=8)
ax.set_ylim(0.3, 1.0); ax.set_ylabel("AUROC (95% CI)"); ax.legend(fontsize=7, ncol=len(cols))
ax.set_title("AUROC of each confidence signal (0.5 = chance)")
fig.tight_layout(); save_figure(fig, "auroc_by_kind"); plt.show()

prob_signals = [s for s in SIGNALS]
fig, axes = plt.subplots(1, len(prob_signals), figsize=(2.3 * len(prob_signals), 2.6), sharey=True)
for ax, name in zip(axes, prob_signals):
    r = reliability(te[SIGNALS[name]], te.correct)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.scatter(r["confidence"], r["accuracy"], s=400 * r["weight"] + 5)
    ece_ = table.set_index("signal").loc[name, "ece"]
    ax.set_title(f"{name}\nECE {ece_:.3f}", fontsize=7); ax.set_xlabel("confidence", fontsize=7)
axes[0].set_ylabel("accuracy")
fig.suptitle("reliability (marker area = share of attempts)", fontsize=8)
fig.tight_layout(); save_figure(fig, "reliability"); plt.show()
""")

md(r"""
## 4. Step values: the SORM against V*, the ORM against V^π

On the toy every prefix has two exact values (`sclab.toy.values`): V* = 1 while no line so far is wrong (the
prefix can still be finished right), and V^π = the probability that the policy, sampling at T = 1, finishes it
right (the gold continuation's teacher-forced probability; 0 after a wrong line). GLoRe's reading: the SORM,
trained on "any of K rollouts succeeds", approximates V*; an ORM read on prefixes approximates V^π, and so is
pessimistic on prefixes that are still right. Both verifiers are read at every line end of the held-out samples;
the policy's own probability of each line (`likelihood_steps`) is shown beside them.
""")
code(r"""
prefix = None
lik_te = likelihood_steps(gen, A_te)
if is_toy:
    from sclab.toy.values import v_pi, v_star
    stars = [v_star(by_id[a.problem_id], r, the_task.world, len(a.steps)) for a, r in zip(A_te, te.response)]
    vpis = v_pi(gen, problems, A_te, stars)
    orm_pre = predict(orm, outcome_rows(A_te, at_steps=True))
    rows = []
    for i, a in enumerate(A_te):
        for j in range(len(a.steps)):
            rows.append({"problem_id": a.problem_id, "line": j + 1, "v_star": stars[i][j], "v_pi": vpis[i][j],
                         "sorm": sorm_te[i][j], "orm": orm_pre[i][j],
                         "line_prob_min": float(np.min(lik_te[i][:j + 1]))})
    prefix = pd.DataFrame(rows)
    agree = {}
    for v in ("sorm", "orm", "line_prob_min"):
        hit = ((prefix[v] >= flag_threshold) == (prefix.v_star == 1)).astype(float)
        lo, hi = paired_diff_ci(prefix.problem_id, hit, np.zeros(len(hit)), n_boot=n_boot, seed=seed)
        agree[v] = {"agree_v_star": float(hit.mean()), "agree_v_star_lo": lo, "agree_v_star_hi": hi,
                    "mse_v_star": float(((prefix[v] - prefix.v_star) ** 2).mean()),
                    "mse_v_pi": float(((prefix[v] - prefix.v_pi) ** 2).mean()),
                    "mean_on_right_prefixes": float(prefix.loc[prefix.v_star == 1, v].mean()),
                    "mean_on_wrong_prefixes": float(prefix.loc[prefix.v_star == 0, v].mean())}
    clean = prefix[prefix.v_star == 1]
    gap = clean.orm - clean.v_pi
    lo, hi = paired_diff_ci(clean.problem_id, clean.orm, clean.v_pi, n_boot=n_boot, seed=seed)
    slo, shi = paired_diff_ci(clean.problem_id, clean.sorm, clean.orm, n_boot=n_boot, seed=seed)
    orm_gap = {"orm_minus_v_pi": float(gap.mean()), "orm_minus_v_pi_lo": lo, "orm_minus_v_pi_hi": hi,
               "sorm_minus_orm": float((clean.sorm - clean.orm).mean()), "sorm_minus_orm_lo": slo, "sorm_minus_orm_hi": shi,
               "v_pi": float(clean.v_pi.mean())}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, (name, part) in zip(axes, (("prefixes with no wrong line (V* = 1)", prefix[prefix.v_star == 1]),
                                       ("prefixes after a wrong line (V* = 0)", prefix[prefix.v_star == 0]))):
        m = part.groupby("line")[["v_pi", "sorm", "orm", "line_prob_min"]].mean()
        for c, lab in (("v_pi", "V^π (exact)"), ("sorm", "SORM"), ("orm", "ORM on the prefix"),
                       ("line_prob_min", "min line probability")):
            ax.plot(m.index, m[c], marker=".", label=lab)
        ax.axhline(1.0 if "no wrong" in name else 0.0, color="k", ls=":", lw=0.8, label="V*")
        ax.set_title(name, fontsize=9); ax.set_xlabel("lines written")
    axes[0].set_ylabel("mean value"); axes[0].legend(fontsize=7); axes[0].set_ylim(-0.02, 1.05)
    fig.tight_layout(); save_figure(fig, "step_values"); plt.show()
    display(pd.DataFrame(agree).T.round(3))
    print("on prefixes with no wrong line: ORM − V^π", format_ci(orm_gap, "orm_minus_v_pi"), f"(V^π there: {orm_gap['v_pi']:.3f});",
          "SORM − ORM", format_ci(orm_gap, "sorm_minus_orm"))
""")

md(r"""
## 5. Refinement guided by the verifiers

From each held-out draft (sample 0), GLoRe's two refinements and its reranking, against best-of-N at equal samples:

- **global refinement**: the draft is rejected as a whole (the critic's turn: `wrong again <question>` on the toy,
  where the toy model then writes a fresh attempt) and a new solution is written;
- **local refinement**: the draft is kept up to the first step whose value falls below `flag_threshold` and
  rewritten from there by the policy (the toy has no trained refiner: the continuation is the policy's own). Two
  localisers: the SORM, and the policy's own line probability;
- **reranked**: of the draft and its two refinements, the one the ORM rates highest; against the ORM's pick among
  three fresh samples (best-of-3, samples 0–2), GLoRe's comparison at equal samples. The same comparison is made
  with the policy's own sequence probability as the reranker (draft, global, and the line-probability rewrite).
""")
code(r"""
one = SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + 3)
d_idx = np.flatnonzero(te["sample"].to_numpy() == 0)
drafts = te.iloc[d_idx].reset_index(drop=True)
A_d = [A_te[i] for i in d_idx]
grade = lambda ids, texts: np.array([the_task.grade(by_id[i], t).correct for i, t in zip(ids, texts)], dtype=float)
critic_turn = get_strategy("critic-feedback")
g_convs = [first_turn(by_id[i], the_task) + [{"role": "assistant", "content": r},
           {"role": "user", "content": critic_turn.turns(the_task, by_id[i], [Attempt(r, None, "The answer is wrong.")])[0]}]
           for i, r in zip(drafts.problem_id, drafts.response)]
refined = {"draft": list(drafts.response), "global": [c[0].text for c in gen.generate(g_convs, one, desc="global refinement")]}
def step_tokens(a):   # tokens in each step of an attempt
    return np.diff([len(a.prompt) - 1] + a.steps)
# a toy line is five tokens and its result is one of them: the line's probability is the result's. A chat model's
# line is tens of tokens: its per-token geometric mean is the comparable value
lik_flag = lik_te if is_toy else [v ** (1.0 / np.maximum(step_tokens(a), 1)) for v, a in zip(lik_te, A_te)]
flags = {"local (SORM flag)": [first_flag(sorm_te[i][:-1], flag_threshold) for i in d_idx],
         "local (line-probability flag)": [first_flag(lik_flag[i], flag_threshold) for i in d_idx]}
for name, f in flags.items():
    refined[name] = resume(gen, the_task, problems, A_d, f, one, desc=name)
ok = {k: grade(drafts.problem_id, v) for k, v in refined.items()}

def orm_score(ids, texts):
    rows_ = attempt_rows(gen, the_task, problems, pd.DataFrame({"problem_id": ids, "sample": 0, "response": texts}), step_stop)
    return np.array([p[-1] for p in predict(orm, outcome_rows(rows_))])
cands = ["draft", "global", "local (SORM flag)"]
scores = np.stack([orm_score(drafts.problem_id, refined[k]) for k in cands], 1)
ok["reranked (draft, global, local)"] = np.stack([ok[k] for k in cands], 1)[np.arange(len(drafts)), scores.argmax(1)]
# the same reranking with the signal that sees the toy's errors: the policy's own sequence log-probability
cands_lp = ["draft", "global", "local (line-probability flag)"]
self_lp = np.stack([[sc.total for sc in gen.score([first_turn(by_id[i], the_task) for i in drafts.problem_id], refined[k],
                                                   desc=f"self-reward ({k})")] for k in cands_lp], 1)
ok["reranked by sequence probability"] = np.stack([ok[k] for k in cands_lp], 1)[np.arange(len(drafts)), self_lp.argmax(1)]
three = te[te["sample"] < 3]
best3 = three.loc[three.groupby("problem_id").orm.idxmax()].set_index("problem_id").reindex(drafts.problem_id)
ok["best-of-3 by ORM"] = best3.correct.to_numpy(dtype=float)
# scored as the reranked arm scores its candidates (the text re-read after the question), so both arms compare alike
three = three.assign(text_lp=[sc.total for sc in gen.score([first_turn(by_id[i], the_task) for i in three.problem_id],
                                                           list(three.response), desc="self-reward (best-of-3)")])
ok["best-of-3 by sequence probability"] = three.loc[three.groupby("problem_id").text_lp.idxmax()] \
    .set_index("problem_id").reindex(drafts.problem_id).correct.to_numpy(dtype=float)
pid = drafts.problem_id.to_numpy()
refine_rows = []
for k, v in ok.items():
    lo, hi = paired_diff_ci(pid, v, np.zeros(len(v)), n_boot=n_boot, seed=seed)
    dlo, dhi = paired_diff_ci(pid, v, ok["draft"], n_boot=n_boot, seed=seed)
    refine_rows.append({"method": k, "acc": v.mean(), "acc_lo": lo, "acc_hi": hi, "vs_draft": v.mean() - ok["draft"].mean(),
                        "vs_draft_lo": dlo, "vs_draft_hi": dhi,
                        "flagged": np.mean([x is not None for x in flags[k]]) if k in flags else np.nan})
refine = pd.DataFrame(refine_rows).set_index("method")
contrasts = {}
for name, (a, b) in {"local_sorm_vs_global": ("local (SORM flag)", "global"),
                     "local_lineprob_vs_global": ("local (line-probability flag)", "global"),
                     "reranked_vs_best_of_3": ("reranked (draft, global, local)", "best-of-3 by ORM"),
                     "reranked_seqprob_vs_best_of_3": ("reranked by sequence probability", "best-of-3 by sequence probability")}.items():
    lo, hi = paired_diff_ci(pid, ok[a], ok[b], n_boot=n_boot, seed=seed)
    contrasts[name] = {"diff": float(ok[a].mean() - ok[b].mean()), "diff_lo": lo, "diff_hi": hi}
if is_toy:   # what each refinement does to the drafts of each error kind
    kind = drafts.error_kind.fillna("right")
    by_kind_refine = pd.DataFrame({k: pd.Series(v).groupby(kind.to_numpy()).mean() for k, v in ok.items()}).T
    display(by_kind_refine.round(3))
display(pd.DataFrame(contrasts).T.round(3))
refine.round(3)
""")

md(r"""
## 6. Critique in the loop

The critic's verdict becomes the retry turn (`critic-feedback`, a history-aware strategy): the ORM reads the first
attempt and objects where its confidence is below `critic_threshold`; an attempt it does not object to stands. On the
toy an objection is said as the verdict word `wrong` (the toy's dialect has no words for a critique's text), so the
critic is a verifier-gated retry whose gain is set by its precision. It is set beside the intrinsic retry (the model
checks itself: `intrinsic_strategy`), oracle feedback (the gold label says wrong: an upper bound, not
self-correction), and the located critique of section 5 (the ORM objects, the SORM locates, the policy rewrites
from there).
""")
code(r"""
one_ep = SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + 1)

def orm_critic(probs, attempts):
    s = orm_score([p.id for p in probs], [a.text for a in attempts])
    return ["The answer is wrong." if v < critic_threshold else "" for v in s]
episodes = {
    "intrinsic retry": run_episodes(gen, the_task, problems, strategy=intrinsic_strategy, params=one_ep),
    "ORM critic": run_episodes(gen, the_task, problems, strategy="critic-feedback", params=one_ep, critic=orm_critic),
    "oracle feedback": run_episodes(gen, the_task, problems, strategy="oracle-feedback", params=one_ep, stop="oracle"),
}
loop = {k: metrics_with_ci(v, n_boot=n_boot, seed=seed) for k, v in episodes.items()}
# the located critique: the ORM objects and the SORM's flag says where the rewrite starts
obj = drafts.orm.to_numpy() < critic_threshold
located = np.where(obj, ok["local (SORM flag)"], ok["draft"])
located_df = pd.concat([drafts.assign(turn=1, correct=ok["draft"].astype(bool)),
                        drafts.assign(turn=2, correct=located.astype(bool))])[["problem_id", "sample", "turn", "correct", "tokens"]]
loop["ORM critic + SORM location"] = metrics_with_ci(located_df, n_boot=n_boot, seed=seed)
loop_t = pd.DataFrame({k: {c: v[c] for c in ["acc_t1", "acc_t2", "delta", "delta_lo", "delta_hi", "delta_i2c", "delta_c2i"]}
                       for k, v in loop.items()}).T
loop_t.round(3)
""")

md(r"""
### Critique as training data

AutoMathCritique's second use of a critic is at training time: while the policy explores the training problems,
the critic's objections and located errors turn wrong attempts into right ones, and the policy is fine-tuned on
what is right (self-training with critique supervision). Here the exploration is one new T = 1 sample per training
problem (one that neither verifier trained on). Three data sets, each SFT'd into a copy of the policy for `critique_sft_epochs`
epochs at `critique_sft_lr`:

- **self-training**: the right explorations (rejection sampling, STaR's data; every example is graded right);
- **+ critique refinements**: also, for each exploration the ORM objects to, the policy's rewrite from the SORM's
  first flagged step (from the start where no step is flagged), kept where it is right;
- **+ fresh retries**: the control at equal samples: for the same objected explorations, a fresh attempt instead of
  the located rewrite, kept where it is right. It separates what the critique's location adds from what more
  samples on the same problems add.

Each tuned policy then answers the held-out problems with `n_samples` samples at T = 1, beside the policy's own
samples from section 1. Epochs are fixed, so an arm with more data also trains for more steps (the table counts them);
the fresh-retry control matches the critique's arm in both. The intervals are over held-out problems: each arm is one
SFT run, so they do not hold SFT's own run-to-run spread.
""")
code(r"""
from sclab.generate import Generator
from sclab.sharpening import gold_path_kind, sft_dataset
from sclab.train import sft

critique_training = None
if critique_sft_epochs:
    # a new exploration per training problem: neither verifier trained on these samples
    explore = sample_pool(gen, train_source, train, SamplingParams(n=1, temperature=temperature,
                                                                   max_new_tokens=max_new_tokens, seed=seed + 6))
    A_x = attempt_rows(gen, train_source, train, explore, step_stop)
    objected = np.array([p[-1] for p in predict(orm, outcome_rows(A_x))]) < critic_threshold
    sorm_x = predict(sorm, step_rows(A_x))
    x_params = SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + 5)
    located_x = [(first_flag(v[:-1], flag_threshold) or 0) if o else None for v, o in zip(sorm_x, objected)]
    rewrites = {"+ critique refinements": resume(gen, train_source, train, A_x, located_x, x_params, desc="critique-guided rewrites"),
                "+ fresh retries": resume(gen, train_source, train, A_x, [0 if o else None for o in objected], x_params,
                                          desc="fresh retries")}
    right_x = explore.correct.to_numpy(bool)
    base_rows = explore.loc[right_x, ["problem_id", "response"]]
    if base_rows.empty:
        raise ValueError(f"critique as training data: none of the {len(explore)} explorations is right, so self-training "
                         "has no data; raise train_problems or set critique_sft_epochs: 0")
    arms = {"self-training": base_rows}
    for name, texts in rewrites.items():
        ok_r = np.array([train_source.grade(by_id[i], t).correct for i, t in zip(explore.problem_id, texts)])
        extra = pd.DataFrame({"problem_id": explore.problem_id, "response": texts})[objected & ok_r]
        arms[name] = pd.concat([base_rows, extra], ignore_index=True)
    eval_params = SamplingParams(n=n_samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + 1)
    cls = {p.id: gold_path_kind(p, world) for p in problems} if is_toy else {}
    if backend == "vllm":   # the tuned arms sample through hf: so does the untrained policy, or the gap holds the backends'
        base_eval = sample_pool(Generator(lm, tok, batch_size=batch_size), the_task, problems, eval_params)
    else:                   # the policy's held-out samples of section 1 (the same draws)
        base_eval = te
    base_eval = base_eval[["problem_id", "sample", "correct"]]
    evals, data_rows = {"policy (no training)": base_eval}, {}
    for name, rows in arms.items():
        tuned, st = sft(lm, tok, sft_dataset(rows, train_source, train, held_out=problems), epochs=critique_sft_epochs,
                        lr=critique_sft_lr, lora=lora, seed=seed, progress=False)
        evals[name] = sample_pool(Generator(tuned, tok, batch_size=batch_size), the_task, problems, eval_params)[
            ["problem_id", "sample", "correct"]]
        del tuned
        data_rows[name] = {"examples": len(rows), "problems_covered": rows.problem_id.nunique(),
                           "added_by_rewrites": len(rows) - len(base_rows), "sft_steps": st["steps"]}
    keyed = {k: v.set_index(["problem_id", "sample"]).correct.reindex(base_eval.set_index(["problem_id", "sample"]).index)
             .to_numpy(float) for k, v in evals.items()}
    pid_e = base_eval.problem_id.to_numpy()
    critique_training = {"data": {k: {c: int(x) for c, x in v.items()} for k, v in data_rows.items()},
                         "objected": float(objected.mean()), "exploration_acc": float(right_x.mean())}
    ct_rows = []
    for k, v in keyed.items():
        lo, hi = paired_diff_ci(pid_e, v, np.zeros(len(v)), n_boot=n_boot, seed=seed)
        dlo, dhi = paired_diff_ci(pid_e, v, keyed["policy (no training)"], n_boot=n_boot, seed=seed)
        ct_rows.append({"policy": k, "acc": v.mean(), "acc_lo": lo, "acc_hi": hi,
                        "vs_policy": v.mean() - keyed["policy (no training)"].mean(), "vs_policy_lo": dlo, "vs_policy_hi": dhi,
                        **({f"acc_{c}": v[np.array([cls[i] == c for i in pid_e])].mean()
                            for c in ("clean", "unsure", "misconception")} if cls else {})})
    ct = pd.DataFrame(ct_rows).set_index("policy")
    for name, (a, b) in {"critique_vs_self_training": ("+ critique refinements", "self-training"),
                         "critique_vs_fresh": ("+ critique refinements", "+ fresh retries")}.items():
        lo, hi = paired_diff_ci(pid_e, keyed[a], keyed[b], n_boot=n_boot, seed=seed)
        critique_training[name] = {"diff": float(keyed[a].mean() - keyed[b].mean()), "diff_lo": lo, "diff_hi": hi}
    ARM_KEY = {"policy (no training)": "policy", "self-training": "self_training", "+ critique refinements": "critique",
               "+ fresh retries": "fresh"}
    critique_training["arms"] = {ARM_KEY[k]: {c: float(x) for c, x in r.items() if pd.notna(x)} for k, r in ct.iterrows()}
    critique_training["data"] = {ARM_KEY[k]: v for k, v in critique_training["data"].items()}
    display(pd.DataFrame(data_rows).T)
    print(f"explorations right {right_x.mean():.3f}; the ORM objects to {objected.mean():.3f}")
    display(ct.round(3))
""")

md(r"""
## 7. Selective answering

Answer only where a signal is confident (Self-Judge, P(IK)): the accuracy of the answered attempts as the coverage
falls from 100% to 5%. A signal that cannot tell right from wrong keeps the overall accuracy at every coverage.
""")
code(r"""
sel = {name: selective_curve(te[col].to_numpy(), te.correct.to_numpy()) for name, col in SIGNALS.items()}
fig, ax = plt.subplots(figsize=(7, 3.6))
for name, c in sel.items():
    ax.plot(c["coverage"], c["accuracy"], marker=".", label=f"{name} (area {c['aurc_acc']:.3f})")
ax.axhline(te.correct.mean(), color="k", ls=":", lw=0.8, label="no signal")
ax.set_xlabel("coverage (share of attempts answered)"); ax.set_ylabel("accuracy of the answered")
ax.invert_xaxis(); ax.legend(fontsize=7); ax.set_title("accuracy-coverage curves")
fig.tight_layout(); save_figure(fig, "selective"); plt.show()
pd.DataFrame({n: {"acc@50%": c["accuracy"][9], "acc@20%": c["accuracy"][3], "area": c["aurc_acc"]} for n, c in sel.items()}).T.round(3)
""")

md(r"""
## 8. Self against other

Generalized Correctness Models' question: does a verifier built on the policy's own weights predict the policy's
correctness better than one built on another model's? Four ORMs, each trained for the same steps and all scored on the
policy's held-out samples:

| ORM | weights | trained on |
|---|---|---|
| self | the policy's | the policy's graded samples (section 2) |
| other model's weights | `other_model`'s | the same samples of the policy (GCM's comparison) |
| other model's history | the policy's | `other_model`'s own graded samples of the same training problems |
| fresh network | none (freshly initialised, the policy's size; toy only) | the policy's samples |

On the toy the other model is a second build of the same world from another seed (`toy:arith-b`): it has the same
kinds of error to make (the world's unsure facts and misconceptions are one table), but its own slips and its own
learned beliefs. Its build is the same recipe but not the same course: its first phase (single attempts) ran to the
1200-step cap without reaching the table-accuracy probe, where the policy's passed it at step 675, so it is a
somewhat weaker model. It samples with its own seed. The fresh network is the weakest other: it has none of any model's knowledge. The same paired
bootstrap over problems gives the gain of P(True) from brainstormed samples.
""")
code(r"""
other = None
if other_model:
    from sclab.generate import Generator
    from sclab.models import load
    lm_b, tok_b = load(other_model)
    if tok_b.get_vocab() != tok.get_vocab():
        raise ValueError(f"other_model {other_model!r}: its tokenizer differs from the policy's ({model!r}); a verifier on "
                         "its weights reads the policy's tokens, so choose a model with the same tokenizer")
    gen_b = Generator(lm_b, tok_b, batch_size=batch_size)
    # its own random draws (seed + 7): with the policy's seed both models would sample with the same uniforms
    tr_b = sample_pool(gen_b, train_source, train, SamplingParams(n=train_samples, temperature=temperature,
                                                                  max_new_tokens=max_new_tokens, seed=seed + 7))
    A_tr_b = attempt_rows(gen_b, train_source, train, tr_b, step_stop)
    orm_bw = value_model(lm_b, "self", seed=seed, lora=lora)   # the other model's weights, the policy's history
    fit(orm_bw, outcome_rows(A_tr, y_tr), "ORM (other model's weights)")
    orm_bh = value_model(lm, "self", seed=seed, lora=lora)     # the policy's weights, the other model's history
    fit(orm_bh, outcome_rows(A_tr_b, tr_b.correct.to_numpy().astype(float)), "ORM (other model's history)")
    te["orm_other_weights"] = [p[-1] for p in predict(orm_bw, outcome_rows(A_te))]
    te["orm_other_history"] = [p[-1] for p in predict(orm_bh, outcome_rows(A_te))]
    acc_a = tr.groupby("problem_id").correct.mean()
    acc_b = tr_b.groupby("problem_id").correct.mean().reindex(acc_a.index)
    other = {"policy_train_acc": float(tr.correct.mean()), "other_train_acc": float(tr_b.correct.mean()),
             "problem_acc_correlation": float(np.corrcoef(acc_a, acc_b)[0, 1])}
    del orm_bw, orm_bh, gen_b, lm_b
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    print(f"training samples right: the policy {other['policy_train_acc']:.3f}, {other_model} {other['other_train_acc']:.3f}; "
          f"correlation of their per-problem accuracies {other['problem_acc_correlation']:.3f}")

def auroc_gain(a, b):   # AUROC(a) − AUROC(b) on the same attempts, paired over problem resamples
    return auroc_difference(te, a, b, n_boot=n_boot, seed=seed)
ORMS = {"self": "orm", **({"other model's weights": "orm_other_weights", "other model's history": "orm_other_history"}
                          if other else {}), **({"fresh network": "orm_other"} if orm_other is not None else {})}
orm_table = signal_table(te, ORMS, kinds=KINDS, bucket=BUCKET, n_boot=n_boot, seed=seed)
self_other = auroc_gain("orm", "orm_other_weights") if other else None
self_history = auroc_gain("orm", "orm_other_history") if other else None
self_fresh = auroc_gain("orm", "orm_other") if orm_other is not None else None
brainstorm_gain = auroc_gain("ptrue_brainstorm", "ptrue") if brainstorm else None
for what, g in (("self - other model's weights", self_other), ("self - other model's history", self_history),
                ("self - fresh network", self_fresh), ("P(True) with brainstorm - without", brainstorm_gain)):
    if g:
        print(f"AUROC {what}: {format_ci(g, 'diff')}")
orm_table[["signal", "auroc", "auroc_lo", "auroc_hi", "ece", "brier"] + [f"auroc_{k}" for k in KINDS]].round(3)
""")

md("## 9. Record the run")
code(r"""
safe = lambda s: s.lower().replace("(", "").replace(")", "").replace(",", "").replace("'", "").replace(" ", "_").replace("-", "_")
record("samples", {"train": {"n": len(tr), "acc": float(tr.correct.mean())}, "held_out": {"n": len(te), "acc": float(te.correct.mean())}})
sig_rec = {}
for _, r in table.iterrows():
    d = {k: float(v) for k, v in r.items() if k != "signal" and pd.notna(v)}
    for m, name in (("auroc", "above_chance"), ("auroc_within", "above_chance_within")):
        if m in d:   # AUROC − 0.5 with its CI: a finding's ">0" reads it
            d.update({name: d[m] - 0.5, f"{name}_lo": d[m + "_lo"] - 0.5, f"{name}_hi": d[m + "_hi"] - 0.5})
    sig_rec[safe(r.signal)] = d
record("signals", sig_rec)
record("training", {safe(k): {"final_loss": float(np.mean(v[-20:])), "steps": len(v)} for k, v in losses.items()})
record("sorm_labels", {"n": len(labels), "positive": float(labels.label.mean()), "k": sorm_rollouts})
if prefix is not None:
    record("step_values", {**agree, "orm_gap": orm_gap})
record("refinement", {safe(k): {c: float(v) for c, v in r.items() if pd.notna(v)} for k, r in refine.iterrows()})
record("refinement_contrasts", contrasts)
record("critique_loop", {safe(k): v for k, v in loop.items()})
if critique_training:
    record("critique_training", critique_training)
record("selective", {safe(k): {"aurc_acc": v["aurc_acc"], "acc_at_50": v["accuracy"][9], "acc_at_20": v["accuracy"][3]} for k, v in sel.items()})
record("self_against_other", {safe(r.signal): {k: float(v) for k, v in r.items() if k != "signal" and pd.notna(v)}
                               for _, r in orm_table.iterrows()} | ({"other": other} if other else {}))
for key, g in (("self_other", self_other), ("self_history", self_history), ("self_fresh", self_fresh)):
    if g:
        record(key, g)
if brainstorm_gain:
    record("ptrue_brainstorm_gain", brainstorm_gain)
te["strategy"] = "held-out sample"
save_records(te.drop(columns=[c for c in ("n",) if c in te]))
""")

code(r"""
# the paper findings this run tests: REPORT.md's headline table reads them, `sclab verify` checks their direction
findings = [
    Finding("ptrue-trained", "Kadavath et al. 2022", "2207.05221", "a model trained to judge its own samples tells right "
            "from wrong (P(True) AUROC above chance)", "52B: P(True) separates right from wrong samples",
            "signals.trained_ptrue.above_chance", ">0", "emergent", note="AUROC − 0.5; the untrained verdict replays a keep "
            "prior that is the same for right and wrong answers"),
    Finding("pik-within", "Kadavath et al. 2022", "2207.05221", "P(IK) predicts from the question alone whether the model "
            "will be right", "P(IK) AUROC well above chance in distribution", "signals.pik.above_chance_within", ">0",
            "emergent", note="AUROC − 0.5 within n (problems of the same length only)"),
    Finding("ptrue-brainstorm", "Kadavath et al. 2022", "2207.05221", "brainstormed samples in context improve P(True)",
            "P(True) AUROC rises with samples shown", "ptrue_brainstorm_gain.diff", ">0", "emergent",
            note="AUROC with brainstorm − without, paired over the same attempts") if brainstorm else None,
    Finding("orm-pessimistic", "Havrilla et al. (GLoRe) 2024", "2402.10963", "on prefixes that are still right an ORM is "
            "pessimistic: the SORM rates them higher", "ORM ≈ V^π, SORM ≈ V*", "step_values.orm_gap.sorm_minus_orm", ">0",
            "emergent", note="held-out prefixes with no wrong line (V* = 1), paired") if is_toy else None,
    Finding("rerank-vs-draft", "Havrilla et al. (GLoRe) 2024", "2402.10963", "global and local refinements of a draft, "
            "reranked by the ORM, beat the draft", "GSM8K, LLaMA-2 13B: 53% → 65%",
            "refinement.reranked_draft_global_local.vs_draft", ">0", "emergent"),
    Finding("rerank-vs-bo3", "Havrilla et al. (GLoRe) 2024", "2402.10963", "ORM-reranked refinements beat best-of-3 at equal samples",
            "GSM8K, LLaMA-2 13B: above best-of-3", "refinement_contrasts.reranked_vs_best_of_3.diff", ">0", "emergent"),
    Finding("critic-loop", "AutoMathCritique 2024", "2411.16579", "a critic's verdict in the loop lifts accuracy over the first attempt",
            "test-time critique supervision improves reasoning", "critique_loop.orm_critic.delta", ">0", "emergent"),
    Finding("critique-train", "AutoMathCritique 2024", "2411.16579", "self-training on explorations refined under a "
            "critic's objections and located errors beats self-training without the critic",
            "training-time critique supervision improves the actor over plain self-training",
            "critique_training.critique_vs_self_training.diff", ">0", "emergent",
            note="held-out T = 1 accuracy after SFT, paired; the fresh-retry control is in the notebook") if critique_training else None,
    Finding("self-vs-other", "Generalized Correctness Models 2025", "2509.24988", "a verifier on the model's own weights "
            "predicts its correctness no better than one on another model's weights", "another LLM's correctness model "
            "does as well", "self_other.diff", "~0", "emergent",
            note=f"ORM AUROC on the policy's weights − on {other_model}'s, both trained on the policy's graded samples")
    if self_other else None,
]
findings = [f for f in findings if f is not None]
record_findings(findings)
""")

md(r"""
## Summary

What this run found, filled from its recorded metrics. On the toy world the error rates of each kind of table entry,
and what the toy model does after `wrong`, are **built into the world**; what a verifier learns to see in the
policy's samples, and what refinement and critique do with it, are **emergent**.
""")
code(r"""
from IPython.display import Markdown

T = table.set_index("signal")
ci = lambda name, m="auroc": f"{T.loc[name, m]:.3f} [{T.loc[name, m + '_lo']:.3f}, {T.loc[name, m + '_hi']:.3f}]"
best = T.auroc.idxmax()
lines = [f"- **Judging the policy's samples** (AUROC, pooled): " + "; ".join(f"{n} {ci(n)}" for n in T.index) + ". "
         f"The best signal is {best}."]
trained = [n for n in T.index if n not in ("sequence probability", "prompted P(True)")]
if is_toy and T.loc["sequence probability", "auroc_lo"] > T.loc[trained, "auroc_hi"].max():
    lines.append(f"  The policy's own sequence probability, with no training, judges better than every trained verifier "
                 f"(they reach {T.loc[trained, 'auroc'].min():.3f}–{T.loc[trained, 'auroc'].max():.3f} after {verifier_steps} "
                 f"steps on {len(tr)} samples): on this world a slip is a token the policy itself finds unlikely, and a "
                 "head trained on that many graded samples has not learned to check a line.")
if is_toy and T.loc["prompted P(True)", "auroc_lo"] <= 0.5 <= T.loc["prompted P(True)", "auroc_hi"]:
    lines.append("  Prompted P(True) is at chance: the toy base's verdict after `confirm` is its keep prior, the same "
                 "for right and wrong answers (built into the world: a neutral base).")
if "auroc_within" in T:
    lines.append("- **Within a difficulty bucket** (pairs at the same n only): " +
                 "; ".join(f"{n} {T.loc[n, 'auroc_within']:.3f}" for n in T.index) + ".")
if KINDS:
    lines.append("- **By error kind** (right attempts against wrong ones of one kind): " + "; ".join(
        f"{n}: " + ", ".join(f"{k} {T.loc[n, f'auroc_{k}']:.3f}" for k in KINDS) for n in ("sequence probability", "ORM", "SORM")) + ".")
if prefix is not None:
    lines.append(f"- **Step values**: the SORM agrees with V* on {agree['sorm']['agree_v_star']:.3f} of held-out prefixes "
                 f"(the ORM {agree['orm']['agree_v_star']:.3f}, the policy's min line probability "
                 f"{agree['line_prob_min']['agree_v_star']:.3f}); on prefixes that are still right the ORM averages "
                 f"{agree['orm']['mean_on_right_prefixes']:.3f} against V^π {orm_gap['v_pi']:.3f} and V* 1 "
                 f"(ORM − V^π {format_ci(orm_gap, 'orm_minus_v_pi')}; SORM − ORM {format_ci(orm_gap, 'sorm_minus_orm')}).")
c = contrasts
lines.append(f"- **Refinement** (accuracy of {len(drafts)} drafts): " + "; ".join(f"{k} {r.acc:.3f}" for k, r in refine.iterrows())
             + f". Local (SORM) − global {format_ci(c['local_sorm_vs_global'], 'diff')}; local (line probability) − global "
             f"{format_ci(c['local_lineprob_vs_global'], 'diff')}; reranked − best-of-3 by ORM {format_ci(c['reranked_vs_best_of_3'], 'diff')}.")
for key, what in (("local_sorm_vs_global", "local refinement from the SORM's flag"),
                  ("local_lineprob_vs_global", "local refinement from the policy's line probability"),
                  ("reranked_vs_best_of_3", "ORM-reranked refinement (against best-of-3 by the ORM)"),
                  ("reranked_seqprob_vs_best_of_3", "refinement reranked by sequence probability (against best-of-3 by it)")):
    d = c[key]
    verdict = ("beats" if d["diff_lo"] > 0 else "falls below" if d["diff_hi"] < 0 else "is not separable from")
    lines.append(f"  {what[0].upper() + what[1:]} {verdict} its comparison ({format_ci(d, 'diff')}).")
if refine.loc["local (SORM flag)", "flagged"] < 0.05:
    lines.append(f"  The SORM flags a step in only {refine.loc['local (SORM flag)', 'flagged']:.3f} of the drafts, so its local "
                 "refinement leaves almost every draft as it was.")
lines.append("- **Critique in the loop** (Δ = Acc@t2 − Acc@t1): " + "; ".join(f"{k} {format_ci(v, 'delta')}" for k, v in loop.items()) + ".")
if critique_training:
    ar, ct_ = critique_training["arms"], critique_training
    lines.append(f"- **Critique as training data** (held-out accuracy at T = 1 after SFT): the policy {ar['policy']['acc']:.3f}; "
                 f"self-training {ar['self_training']['acc']:.3f}; + critique refinements {ar['critique']['acc']:.3f}; "
                 f"+ fresh retries {ar['fresh']['acc']:.3f}. The critique's data against self-training "
                 f"{format_ci(ct_['critique_vs_self_training'], 'diff')}, against fresh retries {format_ci(ct_['critique_vs_fresh'], 'diff')} "
                 f"(the rewrites added {ct_['data']['critique']['added_by_rewrites']} and {ct_['data']['fresh']['added_by_rewrites']} "
                 f"right examples to {ct_['data']['self_training']['examples']}).")
    for key, what in (("critique_vs_self_training", "self-training alone"), ("critique_vs_fresh", "the fresh-retry control")):
        d = ct_[key]
        verdict = ("beats" if d["diff_lo"] > 0 else "falls below" if d["diff_hi"] < 0 else "is not separable from")
        lines.append(f"  Training on the critique's data {verdict} {what} ({format_ci(d, 'diff')}).")
    if is_toy:
        lines.append("  On misconception problems (the gold path looks up an entry the policy believes wrong): "
                     + ", ".join(f"{k.replace('_', '-')} {v.get('acc_misconception', float('nan')):.3f}"
                                 for k, v in ar.items()) + ".")
    lines.append("  Each arm is one SFT run: the gaps between arms include SFT's own run-to-run spread, which one seed does "
                 "not measure (`sclab run 04_critique_models --seeds 1 2` does).")
if self_other:
    lines.append(f"- **Self against other** (ORM AUROC on the policy's held-out samples): on the policy's weights "
                 f"{self_other['auroc_a']:.3f}, on {other_model}'s weights {self_other['auroc_b']:.3f} (difference "
                 f"{format_ci(self_other, 'diff')}); trained on {other_model}'s history instead of the policy's "
                 f"{self_history['auroc_b']:.3f} (self − that {format_ci(self_history, 'diff')}). The two models' per-problem "
                 f"accuracies on the training problems correlate at {other['problem_acc_correlation']:.3f}.")
if self_fresh:
    lines.append(f"  A freshly initialised network reaches {self_fresh['auroc_b']:.3f} (self − fresh {format_ci(self_fresh, 'diff')}).")
if brainstorm_gain:
    lines.append(f"- **Brainstormed samples** change trained P(True)'s AUROC by {format_ci(brainstorm_gain, 'diff')}.")
Markdown("\n".join(lines))
""")

md(r"""
## Exercises

Each exercise runs in this notebook after the cells above, on the toy world (the quick preset: it reuses `gen`, `lm`,
`tok`, `the_task`, `problems`, `train`, `tr`, `te`, `A_tr`, `A_te`).

**1. More data or more steps?** The ORM's training loss keeps falling while its held-out AUROC stays where it is.
Train it for 3× the steps, then on 3× the training problems at the same steps. Which one moves the held-out AUROC?

*Hint:* `value_model(lm)`, `train_value(..., steps=...)`, `outcome_rows(A, y)`; more problems need a new
`sample_pool` over `train_source.problems(900, split="train")`. *CPU time:* about 2 minutes each.

<details><summary>Solution</summary>

```python
from sclab.metrics.calibration import auroc
def orm_auroc(A, y, steps):
    vm = value_model(lm); train_value(vm, outcome_rows(A, y), steps=steps, lr=verifier_lr, progress=False)
    return auroc([p[-1] for p in predict(vm, outcome_rows(A_te))], te.correct)
big = train_source.problems(900, split="train", seed=seed)
tr3 = sample_pool(gen, train_source, big, SamplingParams(n=train_samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
A3 = attempt_rows(gen, train_source, big, tr3, step_stop)
print("3x steps:", orm_auroc(A_tr, y_tr, 3 * verifier_steps), " 3x problems:", orm_auroc(A3, tr3.correct.to_numpy(float), verifier_steps))
```

Neither moves it. Measured once on the quick preset, on an earlier machine whose run's ORM scored 0.622 (float
reductions differ between hosts, so trained numbers move by about ±0.01 from machine to machine): three times the
steps gave 0.598, three times the training problems at the same steps 0.611. More steps fit the training samples more closely (the loss
falls well below the run's) and generalise no better: the head memorises samples rather than learning to check a
line. Neither comes near the policy's own sequence probability, which already knows which results it finds
unlikely — a verifier that has to learn the arithmetic's checks from a few thousand graded samples starts from
nothing the policy does not already hold in its likelihood.
</details>

**2. A SORM that sees more rollouts.** Raise K from 4 to 16. What happens to the share of positive step labels on
prefixes after a wrong line, and why would that make the SORM worse at V*, not better?

*Hint:* `rollout_labels(..., k=16)` on `A_sub`; on the toy, join the labels with `sclab.toy.values.v_star` of the
same samples. *CPU time:* about 2 minutes.

<details><summary>Solution</summary>

```python
from sclab.toy.values import v_star
lab16 = rollout_labels(gen, train_source, train, A_sub, sub.correct.to_numpy(), k=16, seed=seed + 2)
vs = [v for a, r in zip(A_sub, sub.response) for v in v_star(by_id[a.problem_id], r, train_source.world, len(a.steps))]
last = {(a.problem_id, a.sample): len(a.steps) for a in A_sub}
for name, lab in (("K = 4", labels), ("K = 16", lab16)):
    l = lab.assign(v_star=vs)
    l = l[l.step < [last[k] for k in zip(l.problem_id, l["sample"])]]   # prefixes only: the last row is the grade
    print(name, l.groupby("v_star").label.mean().round(3).to_dict())
```

After a wrong line a rollout is right only by a lucky compensating error (or, for a slip in the last line, by a
final answer that ignores it), so the positive share there is small, and it grows with K (any of 16 rollouts is
likelier than any of 4 to get lucky), while on V* = 1 prefixes the share, already high at K = 4, moves towards 1.
More rollouts remove false negatives on right prefixes and add false positives on wrong ones:
"any rollout succeeds" drifts from V* towards "some continuation gets lucky".
</details>

**3. A critic that knows where.** In section 6 the critic only says "wrong". Replace the SORM's flag by the
policy's own line probability (section 5's second localiser) in the located critique, and compare Δ and Δc→i
with the ORM critic's.

*Hint:* `ok["local (line-probability flag)"]` holds the rewrites; build the two-turn table as
`located_df` is built. *CPU time:* seconds.

<details><summary>Solution</summary>

```python
located2 = np.where(obj, ok["local (line-probability flag)"], ok["draft"])
df2 = pd.concat([drafts.assign(turn=1, correct=ok["draft"].astype(bool)), drafts.assign(turn=2, correct=located2.astype(bool))])
m2 = metrics_with_ci(df2[["problem_id", "sample", "turn", "correct", "tokens"]], n_boot=n_boot, seed=seed)
print(format_ci(m2, "delta"), m2["delta_c2i"], loop["ORM critic"]["delta_c2i"])
```

Measured once on the quick preset (an earlier machine, as in Exercise 1): Δ +0.052 [+0.026, +0.078] with Δc→i 0.020, against the ORM critic's Δ about 0
with Δc→i 0.092. The line-probability localiser finds the slipped line, so the rewrite keeps every line before it
and the policy recomputes the flagged result, which it gets right with high probability: of the repairs it is the
most targeted. It cannot locate a misconception (the policy believes the wrong value), and where the ORM objects
to a right draft the rewrite can still break it: the gain is capped by the critic's precision.
</details>
""")

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "sclab", "display_name": "sclab", "language": "python"},
                                               "language_info": {"name": "python"}})
nbf.write(nb, "notebooks/04_critique_models.ipynb")
print("wrote notebooks/04_critique_models.ipynb")
