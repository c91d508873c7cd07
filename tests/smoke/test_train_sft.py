"""SFT through TRL on the tiny toy model: parameters change, LoRA touches only the adapter, loss masks."""
import math

import pandas as pd
import pytest
import torch

from sclab.generate import Generator, SamplingParams
from sclab.models import load
from sclab.records import COLUMNS
from sclab.toy.world import ArithTask
from sclab.train import cct_sft, sft, sft_trainer, tokenize_turns, vanilla_sft

pytestmark = pytest.mark.smoke
TASK = ArithTask(n_min=1, n_max=1)  # two-line solutions: ~30-token examples keep each step < 0.2 s
PROBS = TASK.problems(4, seed=0)


@pytest.fixture(scope="module")
def tiny():
    return load("toy:arith-tiny")  # 1 layer, hidden 32: built in seconds, then cached


def records():
    """Per problem: sample 0 right at turn 1; sample 1 wrong at turn 1 (final answer moved by 1), right at turn 2."""
    rows = []
    for p in PROBS:
        good = p.meta["solution"]
        bad = good.rsplit(">", 1)[0] + f"> {(int(p.gold) + 1) % 13}"
        for s, pair in enumerate([(good, good), (bad, good)]):
            for t, resp in enumerate(pair, start=1):
                rows.append(dict(problem_id=p.id, sample=s, turn=t, strategy="retry", stop="intrinsic", response=resp,
                                 extracted=None, how="toy-final", correct=TASK.grade(p, resp).correct, tokens=0,
                                 time=0.0, truncated=False, logprob=0.0, carried=False, feedback=""))
    return pd.DataFrame(rows, columns=COLUMNS)


REC = records()


def words(content):
    """What the toy template trains for an assistant message: its words, then <eos> (word-level vocabulary)."""
    return content.split() + ["<eos>"]


def trained_and_masked(trainer, tok):
    """For each row of one real collated batch: (all non-pad tokens, tokens with a label, non-pad tokens at -100)."""
    batch = next(iter(trainer.get_train_dataloader()))
    out = []
    for ids, labels, att in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        rows = [(t, l != -100) for t, l, a in zip(tok.convert_ids_to_tokens(ids.tolist()), labels.tolist(), att.tolist())
                if a == 1]
        out.append((" ".join(t for t, _ in rows), [t for t, y in rows if y], [t for t, y in rows if not y]))
    return out


def batch_loss(model, trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        return model(**batch).loss.item()


def test_sft_changes_parameters_and_keeps_the_base(tiny):
    model, tok = tiny
    ds, _ = vanilla_sft(REC, PROBS, TASK)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # 3 steps of 4 examples at lr 1e-2: enough to move a 1-layer model's loss, < 5 s
    tuned, stats = sft(model, tok, ds, max_steps=3, batch_size=4, lr=1e-2, progress=False)
    assert stats["steps"] == 3 and stats["examples"] == 4 and math.isfinite(stats["train_loss"])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())      # the caller's model untouched
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) >= len(before) // 2                                            # full fine-tuning moved most tensors
    trainer = sft_trainer(model, tok, ds, batch_size=4, progress=False)
    assert batch_loss(tuned, trainer) < batch_loss(model, trainer)                      # in the right direction
    assert tuned.sclab_spec.startswith("toy:arith-tiny+sft[")                          # its own generation-cache key


def test_lora_changes_only_the_adapter_and_generates(tiny):
    model, tok = tiny
    ds, _ = vanilla_sft(REC, PROBS, TASK)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, stats = sft(model, tok, ds, max_steps=3, batch_size=4, lr=1e-2, lora=True, progress=False)
    assert not any("lora_" in n for n, _ in model.named_parameters())                  # no adapter put into the caller's model
    lora = {n: p for n, p in tuned.named_parameters() if "lora_" in n}
    assert len(lora) == 8                                                              # A and B on q, k, v, o of 1 layer
    assert stats["trainable_params"] == sum(p.numel() for p in lora.values())
    assert all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)            # B starts at 0: it was trained
    for name, v in tuned.state_dict().items():
        if "lora_" in name:
            continue
        key = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(v, base[key]), name                                          # base weights bit-identical
    conv = [[{"role": "user", "content": PROBS[0].question}]]
    greedy = SamplingParams(temperature=0, max_new_tokens=6)                           # 6 tokens: enough to compare
    new = Generator(tuned, tok, cache=False, progress=False).generate(conv, greedy)[0][0]
    old = Generator(model, tok, cache=False, progress=False).generate(conv, greedy)[0][0]
    assert new.tokens == 6 and new.logprob != old.logprob                              # the adapter is active


def test_prompt_tokens_are_masked(tiny):
    model, tok = tiny
    ds, _ = vanilla_sft(REC, PROBS, TASK)
    trainer = sft_trainer(model, tok, ds, batch_size=4, progress=False)
    want = {}
    for ex in ds:
        head = ["<user>"] + ex["prompt"][0]["content"].split() + ["<eos>", "<assistant>"]
        trained = words(ex["completion"][0]["content"])
        want[" ".join(head + trained)] = (trained, head)
    rows = trained_and_masked(trainer, tok)
    assert len(rows) == 4
    for seq, trained, masked in rows:
        assert (trained, masked) == want[seq]      # the completion is trained, the whole prompt is not


@pytest.mark.parametrize("mask_first", [True, False])
def test_attempt_one_masked_only_with_pam(tiny, mask_first):
    model, tok = tiny
    ds, counts = cct_sft(REC, PROBS, TASK, "again", n=4, mask_first=mask_first)
    assert counts["confidence"] == counts["critique"] == 2
    trainer = sft_trainer(model, tok, ds, batch_size=4, progress=False)
    want = {}
    for ex in ds:
        q, a1, retry, a2 = ex["prompt"] + ex["completion"]
        head = ["<user>"] + q["content"].split() + ["<eos>", "<assistant>"]
        again = ["<user>", "again", "<eos>", "<assistant>"]
        if mask_first:   # PAM: attempt 1 sits in the prompt, only attempt 2 is trained
            trained, masked = words(a2["content"]), head + words(a1["content"]) + again
        else:            # CCT: both attempts trained; the user's retry turn (and role tags) never
            trained, masked = words(a1["content"]) + words(a2["content"]), head + again
        want[" ".join(head + words(a1["content"]) + again + words(a2["content"]))] = (trained, masked)
    rows = trained_and_masked(trainer, tok)
    assert len(rows) == 4
    for seq, trained, masked in rows:
        assert (trained, masked) == want[seq]


def test_tokenize_turns_matches_trl_on_single_messages(tiny):
    model, tok = tiny
    ds, _ = vanilla_sft(REC, PROBS, TASK)
    trainer = sft_trainer(model, tok, ds, batch_size=4, progress=False)   # TRL's own tokenisation
    for ex, prepared in zip(ds, trainer.train_dataset):
        ours = tokenize_turns(tok, ex["prompt"], ex["completion"])
        assert ours["input_ids"] == prepared["input_ids"]
        assert [int(m) for m in ours["completion_mask"]] == [int(l != -100) for l in prepared["labels"]]


def test_saved_adapter_loads_back(tiny, tmp_path):
    model, tok = tiny
    ds, _ = vanilla_sft(REC, PROBS, TASK)
    tuned, _ = sft(model, tok, ds, max_steps=2, batch_size=4, lr=1e-2, lora=True, output_dir=str(tmp_path),
                   progress=False)  # 2 steps: only the round trip matters here
    again, _ = load("toy:arith-tiny", adapter=str(tmp_path))
    ids = tok.apply_chat_template([{"role": "user", "content": PROBS[0].question}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        assert torch.allclose(tuned(ids).logits, again(ids).logits, atol=1e-6)
        assert not torch.allclose(model(ids).logits, again(ids).logits, atol=1e-6)
