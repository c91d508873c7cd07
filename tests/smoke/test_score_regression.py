"""Regression reference for SCoRe on TRL: the first optimizer steps of `score_trainer` on the toy model
against `references/score_first_steps.json` (config, library versions, per-step logged metrics and a
checksum of the weights after the steps), as TRL's own `tests/invariant/references` do.

`SCoReTrainer` overrides three private `GRPOTrainer` methods: `_generate_and_score_completions`
(per-token advantages from the per-turn rewards), `_get_per_token_logps_and_entropies` (captures the
log-probs of the loss pass) and `_compute_loss` (adds the per-turn KL). A TRL release that renames one,
stops calling it, or changes what its parent computes fails here: the call counts are exact, each
step's loss is recomputed outside TRL, and the logged numbers must match the reference.

After an intended change (the sampler, the rollout, SCoRe's credit, the toy build), re-record with
    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/smoke/test_score_regression.py --record
which runs the steps twice and writes the reference only if both runs agree exactly.
"""
from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.smoke

REFERENCE = Path(__file__).parent / "references" / "score_first_steps.json"
OVERRIDES = ("_generate_and_score_completions", "_get_per_token_logps_and_entropies", "_compute_loss")
MODEL = "toy:arith"
TASK = dict(n_min=1, n_max=3)                        # 2-6 solution lines: mixed groups, each step < 1 s
PROBLEMS = dict(n=16, split="train", seed=3)
# stage II with the paper's α and β (Table 5) at a toy lr, so three steps move the weights and the KL
CONFIG = dict(stage="II", alpha=10.0, beta_turn1=0.1, beta_turn2=0.01, steps=3, lr=1e-3, prompts_per_step=4,
              num_generations=4, max_new_tokens=32, seed=0)
THREADS = 1  # fixed, as the toy build fixes its own: reductions then run in one order whatever the host's setting
# logged values that are averages of 0/1 rewards, of shaped credits on them, or token counts: the same
# samples give the same numbers, so they are compared exactly
EXACT = ("rewards/reward_turn1/mean", "rewards/reward_turn2/mean", "reward", "frac_reward_zero_std",
         "score/acc_t1", "score/acc_t2", "score/delta", "score/i2c", "score/c2i", "score/changed",
         "score/credit_turn1", "score/credit_turn2", "num_tokens", "completions/mean_length",
         "completions/min_length", "completions/max_length", "completions/clipped_ratio", "step")
# float results of forward/backward passes: bit-identical on one host (two runs agree exactly before a
# reference is written); 1e-4 relative leaves room for another CPU's reduction order over three Adam
# steps, while a dropped KL term or a changed normalisation moves them by 1e-2 or more
REL, ABS = 1e-4, 1e-7   # ABS: the KL of step 1 is 0 (policy = reference)
CLOSE = ("loss", "grad_norm", "entropy", "kl/turn1", "kl/turn2", "reward_std", "rewards/reward_turn1/std",
         "rewards/reward_turn2/std")


def _versions() -> dict:
    import transformers
    import trl

    return {"trl": trl.__version__, "torch": torch.__version__, "transformers": transformers.__version__}


def _token_logps(model, ids, attention, width):
    """Log-probs of the last `width` tokens of `ids` under `model`: a plain forward pass, not TRL's fused head."""
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits[:, -width - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, -width:, None])[..., 0]


def _expected_advantages(rows, width, num_generations, alpha):
    """SCoRe stage II's per-token advantages from the rollout's rewards, written out here: attempt-1
    tokens get r1 + r2, attempt-2 tokens r2 + α(r2 − r1), each normalised within its prompt group."""
    r1 = torch.tensor([float(x["r1"]) for x in rows])
    r2 = torch.tensor([float(x["r2"]) for x in rows])

    def normalise(ret):
        g = ret.view(-1, num_generations)
        return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).view(-1)

    a1, a2 = normalise(r1 + r2), normalise(r2 + alpha * (r2 - r1))
    turns = torch.zeros(len(rows), width, dtype=torch.long)
    for i, x in enumerate(rows):
        t = torch.tensor(x["turn_of_token"][:width])
        turns[i, :len(t)] = t
    return torch.where(turns == 1, a1[:, None], torch.where(turns == 2, a2[:, None], 0.0)), turns


def first_steps() -> dict:
    """Run CONFIG's steps on a fresh copy of the toy model; return what the reference records and the checks."""
    from sclab.models import fingerprint, load
    from sclab.toy.registry import TOY_MODELS
    from sclab.toy.world import ArithTask
    from sclab.train.score import score_trainer
    from trl import GRPOTrainer

    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        model, tok = load(MODEL)
        task = ArithTask(**TASK)
        problems = task.problems(PROBLEMS["n"], split=PROBLEMS["split"], seed=PROBLEMS["seed"])
        trainer = score_trainer(model, tok, task, problems, progress=False, **CONFIG)
        assert isinstance(trainer, GRPOTrainer)
        missing = [m for m in OVERRIDES if m not in vars(type(trainer)) or not hasattr(GRPOTrainer, m)]
        start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        calls, losses, rollouts = Counter(), [], []

        def counted(name, fn):
            def wrapper(*args, **kwargs):
                calls[name] += 1
                return fn(*args, **kwargs)
            return wrapper

        generate, compute_loss = trainer._generate_and_score_completions, trainer._compute_loss

        def generate_and_score(inputs):
            out = generate(inputs)
            rollouts.append((inputs, out))
            return out

        def loss_with_check(policy, inputs):
            rows, out = rollouts[-1]
            width = inputs["completion_ids"].shape[1]
            ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
            att = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
            adv, turns = _expected_advantages(rows, width, CONFIG["num_generations"], CONFIG["alpha"])
            # TRL shuffles the rollout batch before the loss: find each loss row's rollout row (equal rows
            # are copies of one sample of one prompt, with equal credit)
            scored = [tuple(r) for r in torch.cat([out["prompt_ids"], out["completion_ids"]], 1).tolist()]
            order = [scored.index(tuple(r)) for r in ids.tolist()]
            adv, turns = adv[order], turns[order]
            mask = (turns > 0).float()  # both attempts carry loss; the injected instruction and padding do not
            diff = _token_logps(model, ids, att, width) - _token_logps(policy, ids, att, width)  # ref − policy
            kl = torch.exp(diff) - diff - 1
            beta = torch.where(turns == 1, CONFIG["beta_turn1"], torch.where(turns == 2, CONFIG["beta_turn2"], 0.0))
            # num_iterations 1: TRL's old log-probs are the current ones detached, the ratio is exactly 1 and
            # its clipped term is the advantage itself
            ours = (((-adv + beta * kl) * mask).sum(1) / mask.sum(1)).mean().item()
            theirs = compute_loss(policy, inputs)
            losses.append({"trainer": theirs.item(), "recomputed": ours,
                           "advantages_match": bool(torch.allclose(inputs["advantages"].cpu(), adv, atol=1e-5))})
            return theirs

        trainer._generate_and_score_completions = counted(OVERRIDES[0], generate_and_score)
        trainer._get_per_token_logps_and_entropies = counted(OVERRIDES[1], trainer._get_per_token_logps_and_entropies)
        trainer._compute_loss = counted(OVERRIDES[2], loss_with_check)
        trainer.train()
        steps = [{k: v for k, v in r.items() if k in EXACT + CLOSE} for r in trainer.state.log_history if "loss" in r]
        update = [(p.detach() - start[n]).double() for n, p in trainer.model.named_parameters()]
        return {
            "model": MODEL, "recipe": TOY_MODELS[MODEL.removeprefix("toy:")].fingerprint(),
            "start_fingerprint": fingerprint(model), "task": TASK, "problems": PROBLEMS,
            "config": CONFIG, "threads": THREADS, "versions": _versions(), "steps": steps,
            "params": {"update_l1": sum(u.abs().sum().item() for u in update),
                       "update_l2": math.sqrt(sum((u * u).sum().item() for u in update))},
            "checks": {"calls": dict(calls), "missing_overrides": missing, "losses": losses},
        }
    finally:
        torch.set_num_threads(threads)


def _reference() -> dict:
    with open(REFERENCE) as f:
        return json.load(f)


def _what_to_check(ref: dict) -> str:
    return (f"\nReference {REFERENCE.name}: recorded with {ref['versions']}; running {_versions()}.\n"
            "If TRL changed, compare the three GRPOTrainer methods SCoReTrainer overrides with TRL's new code: "
            "_generate_and_score_completions (per-token advantages from r1/r2), _get_per_token_logps_and_entropies "
            "(captures the loss pass's log-probs) and _compute_loss (adds the per-turn KL with TRL's beta off).\n"
            "If the change is intended (sampler, rollout, credit, toy build), re-record: OMP_NUM_THREADS=1 "
            "PYTHONPATH=. python tests/smoke/test_score_regression.py --record")


@pytest.fixture(scope="module")
def run():
    return first_steps()


def test_trl_calls_every_override(run):
    checks, n = run["checks"], CONFIG["steps"]
    assert checks["missing_overrides"] == [], \
        f"no longer overridden by SCoReTrainer or no longer defined by GRPOTrainer: {checks['missing_overrides']}"
    # per step (steps_per_generation 1): one rollout batch scored; two log-prob passes (the reference's
    # in the rollout, the policy's in the loss: num_iterations 1 skips the old-policy pass); one loss
    assert checks["calls"] == {OVERRIDES[0]: n, OVERRIDES[1]: 2 * n, OVERRIDES[2]: n}, \
        f"TRL calls SCoReTrainer's overrides differently: {checks['calls']}" + _what_to_check(_reference())


def test_loss_is_scores_objective_recomputed_outside_trl(run):
    losses = run["checks"]["losses"]
    assert len(losses) == CONFIG["steps"]
    for step, x in enumerate(losses, start=1):
        assert x["advantages_match"], f"step {step}: per-token advantages are not stage II's per-turn credit"
        # same formula, another code path (plain forward + log_softmax, not TRL's fused head): float noise only
        assert x["trainer"] == pytest.approx(x["recomputed"], rel=1e-5, abs=1e-7), (step, x)
    logged = [s["loss"] for s in run["steps"]]
    assert logged == pytest.approx([x["trainer"] for x in losses], rel=1e-6)  # the logged loss is the trained one
    assert run["steps"][0]["kl/turn1"] == 0 and run["steps"][-1]["kl/turn1"] > 0  # the policy leaves the reference


def test_first_steps_match_the_reference(run):
    ref = _reference()
    for key in ("model", "recipe", "task", "problems", "config", "threads"):
        assert run[key] == ref[key], f"{key} differs from the reference's: re-record it" + _what_to_check(ref)
    if run["start_fingerprint"] != ref["start_fingerprint"]:
        # the same recipe, other weights: this host's build (float reductions differ between CPUs)
        pytest.skip(f"this host's {MODEL} build ({run['start_fingerprint']}) is not the one the reference was "
                    f"recorded on ({ref['start_fingerprint']})")
    tol, bad = ref["tolerance"], []   # the reference states its own tolerance (EXACT, CLOSE, REL, ABS when recorded)
    assert len(run["steps"]) == len(ref["steps"])
    for step, (got, want) in enumerate(zip(run["steps"], ref["steps"]), start=1):
        for k, v in want.items():
            if k not in got:
                bad.append(f"step {step} {k}: not logged any more")
            elif k in tol["exact"] and got[k] != v:
                bad.append(f"step {step} {k}: {got[k]} != {v} (exact)")
            elif k in tol["close"] and not math.isclose(got[k], v, rel_tol=tol["rel"], abs_tol=tol["abs"]):
                bad.append(f"step {step} {k}: {got[k]} vs {v} (rel {tol['rel']})")
    for k, v in ref["params"].items():
        if not math.isclose(run["params"][k], v, rel_tol=tol["rel"]):
            bad.append(f"weights {k}: {run['params'][k]} vs {v} (rel {tol['rel']})")
    assert not bad, "SCoRe's first steps moved:\n  " + "\n  ".join(bad) + _what_to_check(ref)


def record() -> None:
    a, b = first_steps(), first_steps()
    if a != b:
        raise SystemExit("two runs differ: not recording a reference that cannot be reproduced\n"
                         f"{json.dumps(a, indent=1)}\n{json.dumps(b, indent=1)}")
    if a["checks"]["missing_overrides"] or not all(x["advantages_match"] for x in a["checks"]["losses"]):
        raise SystemExit(f"the run's own checks fail: {a['checks']}")
    REFERENCE.parent.mkdir(exist_ok=True)
    ref = {k: v for k, v in a.items() if k != "checks"}
    REFERENCE.write_text(json.dumps({"tolerance": {"exact": list(EXACT), "rel": REL, "abs": ABS, "close": list(CLOSE)},
                                     **ref}, indent=1) + "\n")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit(f"usage: python {sys.argv[0]} --record")
    record()
