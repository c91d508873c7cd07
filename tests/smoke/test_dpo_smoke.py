"""DPO through TRL on the toy model's own retry episodes: pairs built, only completions trained, the copy
moves (in the preferred direction), the caller's model does not, LoRA touches only the adapter."""
import copy
import math

import pytest
import torch

from sclab.generate import Generator, SamplingParams
from sclab.rollout import run_episodes
from sclab.strategies import get_strategy
from sclab.tasks import get_task
from sclab.train import dpo, dpo_trainer, rise_pairs, scl_pairs

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def setup(toy):
    model, tok = toy
    task = get_task("arith")
    probs = task.problems(30)
    records = run_episodes(Generator(model, tok, cache=False, progress=False), task, probs, strategy="retry",
                           params=SamplingParams(temperature=1.0, max_new_tokens=64, n=2))
    retry = lambda p: get_strategy("retry").messages(task.dialect, task.answer_format, p.question,  # noqa: E731
                                                     task.final_answer)[0]
    return model, tok, task, probs, records, retry


def words(content):
    return content.split() + ["<eos>"]


def pair_margin(model, trainer):
    """Mean over one collated batch of log p(chosen) - log p(rejected), completion tokens only."""
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    lp = torch.log_softmax(logits.float(), -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    seq = (lp * batch["completion_mask"][:, 1:]).sum(1)
    chosen, rejected = seq.chunk(2)
    return (chosen - rejected).mean().item()


def test_pairs_from_real_episodes(setup):
    model, tok, task, probs, records, retry = setup
    for builder, kinds in [(rise_pairs, {"injected", "natural"}), (scl_pairs, {"keep", "fix"})]:
        ds, counts = builder(records, probs, task, retry)
        assert len(ds) == counts["total"] > 0 and set(ds["kind"]) <= kinds
        by_id = {p.id: p for p in probs}
        for ex in ds:
            p = by_id[ex["problem_id"]]
            assert ex["prompt"][2]["content"] == f"again {p.question}"
            assert task.grade(p, ex["chosen"][0]["content"]).correct
            assert not task.grade(p, ex["rejected"][0]["content"]).correct


def test_only_the_completions_are_trained(setup):
    model, tok, task, probs, records, retry = setup
    ds, _ = rise_pairs(records, probs, task, retry)
    trainer = dpo_trainer(model, tok, ds, batch_size=4, progress=False)
    for ex, prepared in zip(ds, trainer.train_dataset):
        q, a1, again = ex["prompt"]
        head = ["<user>"] + q["content"].split() + ["<eos>", "<assistant>"] + words(a1["content"]) \
            + ["<user>"] + again["content"].split() + ["<eos>", "<assistant>"]
        assert tok.convert_ids_to_tokens(prepared["prompt_ids"]) == head        # the retry turn: context only
        assert tok.convert_ids_to_tokens(prepared["chosen_ids"]) == words(ex["chosen"][0]["content"])
        assert tok.convert_ids_to_tokens(prepared["rejected_ids"]) == words(ex["rejected"][0]["content"])


def test_dpo_moves_the_copy_not_the_model(setup):
    model, tok, task, probs, records, retry = setup
    ds, counts = scl_pairs(records, probs, task, retry)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, stats = dpo(model, tok, ds, max_steps=4, batch_size=4, lr=1e-4, progress=False, logging_steps=1)
    assert stats["steps"] == 4 and stats["examples"] == len(ds)
    logged = [r for r in stats["log_history"] if "rewards/accuracies" in r]
    assert len(logged) == 4
    # step 1 is measured before its update, with the policy equal to the reference: every implicit reward
    # is 0, so no pair is ranked right and each pair's loss is -log σ(0) = log 2
    assert logged[0]["rewards/accuracies"] == 0 and logged[0]["rewards/margins"] == pytest.approx(0, abs=1e-6)
    assert logged[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    # the stats are the log's: the last step's accuracy (a share of its 4 pairs), the mean loss over steps
    assert stats["reward_accuracy"] == logged[-1]["rewards/accuracies"] and (4 * stats["reward_accuracy"]) % 1 == 0
    assert stats["reward_margin"] == logged[-1]["rewards/margins"]
    assert stats["train_loss"] == pytest.approx(sum(r["loss"] for r in logged) / 4, rel=1e-6)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())   # the caller's model untouched
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) >= len(before) // 2
    trainer = dpo_trainer(model, tok, ds, batch_size=4, progress=False)
    assert pair_margin(tuned, trainer) > pair_margin(model, trainer)             # chosen gained on rejected
    assert tuned.sclab_spec.startswith("toy:arith+dpo[")
    # TRL's fused-LM-head forward is removed: a deep copy of the tuned model runs its own weights
    assert "forward" not in tuned.__dict__
    twin = copy.deepcopy(tuned)
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(0.5)
    ids = torch.tensor([tok.convert_tokens_to_ids(["<user>", "1", ";", "<eos>", "<assistant>"])])
    with torch.no_grad():
        assert not torch.allclose(twin(ids).logits, tuned(ids).logits)


def test_dpo_lora_trains_only_the_adapter(setup):
    model, tok, task, probs, records, retry = setup
    ds, _ = rise_pairs(records, probs, task, retry)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, stats = dpo(model, tok, ds, max_steps=2, batch_size=4, lr=1e-3, lora=True, progress=False)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    lora = {n: p for n, p in tuned.named_parameters() if "lora_" in n}
    assert lora and stats["trainable_params"] == sum(p.numel() for p in lora.values())
    assert all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)        # B starts at 0: it was trained
    for name, v in tuned.state_dict().items():
        if "lora_" not in name:
            key = name.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(v, base[key]), name
