"""The CUDA tier: the hf backend in bf16 (sampling, scoring), an SFT step, LoRA, GRPO steps (SCoRe's
trainer, and TRL's own GRPOTrainer with a task reward), and vLLM where it is installed.

Run by scripts/gpu/run.sh on a GPU machine; skipped without CUDA (tests/conftest.py); never CI.
Every model here is built in seconds (toy:arith-tiny, or a random Llama), so no download and no
5-minute toy build.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from sclab.generate import Generator, SamplingParams
from sclab.models import load
from sclab.toy.world import ArithTask

pytestmark = pytest.mark.gpu
TASK = ArithTask(n_min=1, n_max=2)  # short solutions: each training step well under a second
PROBS = TASK.problems(16, split="train", seed=3)
# sclab.rollout.first_turn, written out: the hf tests run where pandas (sclab.rollout's) is missing
CONVS = [[{"role": "user", "content": TASK.prompt(p)}] for p in PROBS]


def need_trl():
    """Skip where trl or what it imports (datasets -> pyarrow, pandas) is missing."""
    for module in ("trl", "datasets", "pandas"):
        pytest.importorskip(module)


def bf16_tolerance(model, tok) -> float:
    """Per-token tolerance between two computations of one log-prob where one or both run in bf16.

    bf16 keeps 8 significant bits, so a logit z is rounded by up to |z|·2^-8 on each path, and a
    log-softmax value moves by at most twice its logits' rounding: 4·max|z|·2^-8 for two paths."""
    ids = torch.tensor([tok.apply_chat_template(CONVS[0], add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]], device=model.device)
    with torch.no_grad():
        zmax = model(input_ids=ids).logits.float().abs().max().item()
    return 4 * max(zmax, 1.0) * 2 ** -8


@pytest.fixture(scope="module")
def tiny_cpu():
    return load("toy:arith-tiny", dtype="float32", device="cpu")  # the fp32 reference


@pytest.fixture(scope="module")
def tiny_bf16(device):
    return load("toy:arith-tiny", dtype="bfloat16", device=device)


def sft_data():
    return [{"prompt": [{"role": "user", "content": TASK.prompt(p)}],
             "completion": [{"role": "assistant", "content": p.meta["solution"]}]} for p in PROBS[:8]]


def test_hf_bf16_generation_and_scoring(tiny_bf16, tiny_cpu, device):
    model, tok = tiny_bf16
    assert model.device.type == device and model.dtype == torch.bfloat16
    g = Generator(model, tok, cache=False, progress=False)
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=48, seed=1)       # 64 samples
    out = g.generate(CONVS, params)
    again = g.generate(CONVS, params)
    assert [[c.token_ids for c in r] for r in out] == [[c.token_ids for c in r] for r in again]  # seeds fix samples
    pairs = [(CONVS[i], c) for i, row in enumerate(out) for c in row]
    assert all(c.tokens >= 1 and math.isfinite(c.logprob) for _, c in pairs)
    scored = g.score([conv for conv, _ in pairs], [c for _, c in pairs])
    reference = Generator(*tiny_cpu, cache=False, progress=False).score([conv for conv, _ in pairs],
                                                                         [c for _, c in pairs])
    tol = bf16_tolerance(model, tok)
    for (_, comp), s, ref in zip(pairs, scored, reference):
        assert s.token_ids == comp.token_ids
        # the sampler's (KV-cached decode) and the score's (one forward pass) log-probs, both bf16
        assert max(abs(a - b) for a, b in zip(s.token_logprobs, comp.token_logprobs)) <= tol
        # bf16 on the device against fp32 on the CPU
        assert max(abs(a - b) for a, b in zip(s.token_logprobs, ref.token_logprobs)) <= tol


def test_sft_step(device):
    need_trl()
    from sclab.train import sft

    model, tok = load("toy:arith-tiny", dtype="float32", device=device)   # fp32 weights, bf16 autocast on CUDA
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # 2 steps of 4 examples at lr 1e-2: enough to move a 1-layer model, a few seconds
    tuned, stats = sft(model, tok, sft_data(), max_steps=2, batch_size=4, lr=1e-2, progress=False)
    assert stats["steps"] == 2 and math.isfinite(stats["train_loss"])
    assert next(tuned.parameters()).device.type == device
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the caller's model untouched
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) >= len(before) // 2


def test_lora_step(device):
    need_trl()
    from sclab.train import sft

    model, tok = load("toy:arith-tiny", dtype="float32", device=device)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tuned, stats = sft(model, tok, sft_data(), max_steps=2, batch_size=4, lr=1e-2, lora=True, progress=False)
    lora = {n: p for n, p in tuned.named_parameters() if "lora_" in n}
    assert len(lora) == 8 and all(p.device.type == device for p in lora.values())  # A, B on q/k/v/o of 1 layer
    assert all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)      # B starts at 0: it was trained
    for name, v in tuned.state_dict().items():
        if "lora_" not in name:
            key = name.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(v, base[key]), name                                # base weights bit-identical
    g = Generator(tuned, tok, cache=False, progress=False)                        # the adapter samples and scores
    comps = [row[0] for row in g.generate(CONVS[:4], SamplingParams(max_new_tokens=16, seed=2))]
    scored = g.score(CONVS[:4], comps)
    # fp32 on the device (matmuls in full fp32, PyTorch's default): decode and one forward pass agree to ~1e-5
    assert [s.total for s in scored] == pytest.approx([c.logprob for c in comps], abs=1e-3)


def test_score_grpo_step(device):
    need_trl()
    from sclab.train.score import score_train

    model, tok = load("toy:arith-tiny", dtype="float32", device=device)
    before = copy.deepcopy(model.state_dict())
    tuned, log = score_train(model, tok, TASK, PROBS, stage="II", alpha=2.0, beta_turn1=1.0, beta_turn2=0.01,
                             steps=2, lr=1e-3, prompts_per_step=4, num_generations=2, max_new_tokens=16,
                             progress=False)
    assert next(tuned.parameters()).device.type == device
    moved = sum((tuned.state_dict()[k].float() - before[k].float()).abs().sum().item() for k in before)
    assert moved > 0
    steps = log.dropna(subset=["score/acc_t1"])
    assert len(steps) == 2 and steps["score/acc_t1"].between(0, 1).all()


def test_trl_grpo_with_a_task_reward(tmp_path, device):
    """TRL's own GRPOTrainer driven by `Task.reward_function` over a dataset's problem_id column."""
    need_trl()
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from sclab.tasks.base import completion_text

    model, tok = load("toy:arith-tiny", dtype="float32", device=device)
    reward = TASK.reward_function(PROBS)
    seen = []

    def spy(prompts, completions, problem_id, **kwargs):
        out = reward(prompts, completions, problem_id=problem_id, **kwargs)
        seen.append((list(completions), list(problem_id), out))
        return out

    spy.__name__ = reward.__name__
    ds = Dataset.from_list([{"prompt": CONVS[i], "problem_id": p.id} for i, p in enumerate(PROBS[:8])])
    args = GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8, num_generations=2,
                      max_completion_length=16, learning_rate=1e-3, logging_steps=1, report_to="none",
                      save_strategy="no", bf16=device == "cuda", use_cpu=device == "cpu", disable_tqdm=True)
    trainer = GRPOTrainer(model=model, reward_funcs=[spy], args=args, train_dataset=ds, processing_class=tok)
    trainer.train()
    by_id = {p.id: p for p in PROBS}
    assert seen
    for completions, ids, out in seen:  # each reward is the task's verdict on that problem, recomputed
        assert out == [float(TASK.grade(by_id[i], completion_text(c)).correct) for c, i in zip(completions, ids)]
    logged = [r for r in trainer.state.log_history if "rewards/arith_correct/mean" in r]
    assert logged and 0.0 <= logged[0]["rewards/arith_correct/mean"] <= 1.0


@pytest.fixture(scope="module")
def random_llama_dir(tmp_path_factory):
    """A random 1-layer Llama with the toy tokenizer and head size 64 (which every vLLM attention
    backend supports), saved in milliseconds: vLLM's scoring needs no trained weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from sclab.toy.build import make_tokenizer
    from sclab.toy.registry import TOY_MODELS

    tok = make_tokenizer(TOY_MODELS["arith-tiny"].world)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("random-llama")
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_vllm_sampling_and_scoring(random_llama_dir, device):
    pytest.importorskip("vllm")
    if device != "cuda":
        pytest.skip("vLLM runs on CUDA only")
    g = Generator(str(random_llama_dir), backend="vllm", cache=False, progress=False, dtype="bfloat16",
                  gpu_memory_utilization=0.2, enforce_eager=True, enable_prefix_caching=False, max_model_len=512)
    out = g.generate(CONVS[:8], SamplingParams(n=2, temperature=1.0, max_new_tokens=32, seed=1))
    pairs = [(CONVS[i], c) for i, row in enumerate(out) for c in row]
    scored = g.score([conv for conv, _ in pairs], [c for _, c in pairs])
    hf_model, hf_tok = load(str(random_llama_dir), dtype="float32", device="cpu")
    reference = Generator(hf_model, hf_tok, cache=False, progress=False).score([conv for conv, _ in pairs],
                                                                               [c for _, c in pairs])
    tol = bf16_tolerance(hf_model, hf_tok)
    for (_, comp), s, ref in zip(pairs, scored, reference):
        assert s.token_ids == comp.token_ids and len(comp.token_logprobs) == comp.tokens
        assert max(abs(a - b) for a, b in zip(s.token_logprobs, comp.token_logprobs)) <= tol  # vLLM's own two paths
        assert max(abs(a - b) for a, b in zip(s.token_logprobs, ref.token_logprobs)) <= tol   # against hf fp32
