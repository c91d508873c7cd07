"""The vllm backend as far as a CPU allows: a stand-in `vllm` module records what sclab asks of
vLLM's documented API (LLM, SamplingParams, chat/generate, RequestOutput) and returns outputs."""
import sys
import types
from types import SimpleNamespace as NS

import pytest

from sclab.generate import Generator, SamplingParams, row_seed

pytestmark = pytest.mark.unit


class FakeSamplingParams:
    def __init__(self, **kw):
        self.kw = kw


class FakeLLM:
    last = None

    def __init__(self, model, **kw):
        self.model, self.kw, self.calls = model, kw, []
        FakeLLM.last = self

    def _out(self, prompts, sampling_params):
        outs = []
        for i, (p, sp) in enumerate(zip(prompts, sampling_params)):
            toks = [5, 6, 7] if i % 2 == 0 else [5] * sp.kw["max_tokens"]
            lps = [{t: NS(logprob=-0.5)} for t in toks]
            outs.append(NS(outputs=[NS(text=f" answer {sp.kw['seed']} ", token_ids=toks, cumulative_logprob=-0.5 * len(toks),
                                       logprobs=lps, finish_reason="stop" if i % 2 == 0 else "length")]))
        return outs

    def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None):
        self.calls.append(("chat", messages, sampling_params, lora_request))
        return self._out(messages, sampling_params)

    def generate(self, prompts, sampling_params=None, use_tqdm=True, lora_request=None):
        self.calls.append(("generate", prompts, sampling_params, lora_request))
        return self._out(prompts, sampling_params)


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    mod = types.ModuleType("vllm")
    mod.LLM, mod.SamplingParams = FakeLLM, FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    req = types.ModuleType("vllm.lora.request")
    req.LoRARequest = lambda name, idx, path: NS(name=name, idx=idx, path=path)
    for name, m in {"vllm": mod, "vllm.lora": lora, "vllm.lora.request": req}.items():
        monkeypatch.setitem(sys.modules, name, m)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    return model_dir


def test_requests_and_outputs(fake_vllm, tmp_path):
    g = Generator(str(fake_vllm), backend="vllm", cache=tmp_path / "c.sqlite", progress=False,
                  gpu_memory_utilization=0.5)
    llm = FakeLLM.last
    assert llm.model == str(fake_vllm.resolve()) and llm.kw["gpu_memory_utilization"] == 0.5
    conv = [{"role": "user", "content": "What is 2+2?"}]
    params = SamplingParams(n=2, temperature=0.7, top_p=0.9, max_new_tokens=4, seed=3, stop=("###",))
    out = g.generate([conv, "raw prompt"], params)
    kinds = [c[0] for c in llm.calls]
    assert kinds == ["chat", "generate"]                    # chat messages vs raw text prompts
    sp = llm.calls[0][2][0].kw
    # one request per sample: n=1, its own seed, raw log-probs of the sampled token
    assert sp == {"n": 1, "temperature": 0.7, "top_p": 0.9, "max_tokens": 4, "seed": row_seed(3, conv, 0) % 2 ** 31,
                  "stop": ["###"], "logprobs": 0}
    c0, c1 = out[0]
    assert c0.text == f"answer {row_seed(3, conv, 0) % 2 ** 31}" and c0.tokens == 3 and c0.logprob == -1.5
    assert c0.finish_reason == "stop" and c1.finish_reason == "length" and c1.truncated
    assert c0.token_logprobs == [-0.5] * 3
    # the cache serves a repeat without calling vLLM
    n_calls = len(llm.calls)
    again = g.generate([conv, "raw prompt"], params)
    assert len(llm.calls) == n_calls and again[0][0].text == c0.text and again[0][0].cached


def test_lora_adapter_is_passed(fake_vllm, tmp_path):
    g = Generator(str(fake_vllm), backend="vllm", cache=False, progress=False, adapter=str(tmp_path))
    assert FakeLLM.last.kw["enable_lora"] is True
    g.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_new_tokens=2))
    assert FakeLLM.last.calls[0][3].path == str(tmp_path)


def test_loaded_model_is_refused(fake_vllm):
    with pytest.raises(ValueError, match="spec"):
        Generator(object(), backend="vllm", cache=False)


def test_token_id_prompts_go_to_generate(fake_vllm, tmp_path):
    # multi-turn contexts that sclab builds itself (rollouts from a step, resumed solutions) are token ids:
    # vLLM's LLM.chat cannot take them, LLM.generate takes them as {"prompt_token_ids": ...}
    g = Generator(str(fake_vllm), backend="vllm", cache=False, progress=False)
    llm = FakeLLM.last
    chat = [{"role": "user", "content": "hi"}]
    out = g.generate([[11, 12, 13], chat, "raw"], SamplingParams(max_new_tokens=2, seed=1))
    calls = {c[0]: c[1] for c in llm.calls}
    assert sorted(calls) == ["chat", "generate"]
    assert calls["chat"] == [chat]
    assert calls["generate"] == [{"prompt_token_ids": [11, 12, 13]}, "raw"]
    assert all(len(o) == 1 and o[0].text.startswith("answer") for o in out)
