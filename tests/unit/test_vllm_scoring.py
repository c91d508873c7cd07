"""Scoring on the vllm backend as far as a CPU allows: a stand-in `vllm` module answers prompt
log-prob requests the way vLLM documents them (`RequestOutput.prompt_logprobs`: None at position 0,
then one {token id: Logprob} dict per prompt token, the token's own entry always present, plus the
top-k), and sclab reads the completion's positions out of it."""
import math
import sys
import types
from types import SimpleNamespace as NS

import pytest

from sclab.generate import Completion, Generator
from sclab.generate.vllm import from_prompt_logprobs
from sclab.toy.build import make_tokenizer
from sclab.toy.registry import TOY_MODELS

pytestmark = pytest.mark.unit
TOK = make_tokenizer(TOY_MODELS["arith-tiny"].world)  # the toy tokenizer and chat template, no model needed
CONV = [{"role": "user", "content": "3 ; + 1 * 2 ; 2 ?"}]


def fake_logprob(i: int, tok: int) -> float:
    """The stand-in model's log π(token at position i = tok | earlier tokens)."""
    return -0.01 * (i + 1) - 0.1 * (tok % 7)


class FakeSamplingParams:
    def __init__(self, **kw):
        self.kw = kw


class FakeLLM:
    last = None

    def __init__(self, model, **kw):
        self.model, self.kw, self.calls = model, kw, []
        FakeLLM.last = self

    def get_tokenizer(self):
        return TOK

    def generate(self, prompts, sampling_params=None, use_tqdm=True, lora_request=None):
        self.calls.append((prompts, sampling_params, lora_request))
        k = sampling_params.kw["prompt_logprobs"]
        outs = []
        for p in prompts:
            ids = p["prompt_token_ids"]
            pl = [None]
            for i in range(1, len(ids)):
                d = {ids[i]: NS(logprob=fake_logprob(i, ids[i]), rank=3)}   # the prompt's own token first
                for t in range(k):                                          # then the top-k (token 0 here)
                    d.setdefault(t, NS(logprob=-0.001, rank=1))
                pl.append(d)
            outs.append(NS(prompt_token_ids=ids, prompt_logprobs=pl,
                           outputs=[NS(text="x", token_ids=[0], cumulative_logprob=-1.0, logprobs=None,
                                       finish_reason="length")]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    mod = types.ModuleType("vllm")
    mod.LLM, mod.SamplingParams = FakeLLM, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", mod)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")  # no generation_config.json: EOS from the tokenizer
    return model_dir


def test_score_requests_and_parsing(fake_vllm):
    g = Generator(str(fake_vllm), backend="vllm", cache=False, progress=False)
    prompt = TOK.apply_chat_template(CONV, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    sampled = Completion(text="2", token_ids=TOK.convert_tokens_to_ids(["+1", "<eos>"]), logprob=-1.0, tokens=2,
                         time=0.0, finish_reason="stop")
    assert TOK.unk_token_id not in sampled.token_ids
    a, b = g.score([CONV, CONV], [sampled, "> 3"])
    prompts, sp, _ = FakeLLM.last.calls[0]
    # one token-id prompt per row: the rendered chat + the completion; one token, prompt log-probs, T = 1
    assert prompts[0]["prompt_token_ids"] == list(prompt) + sampled.token_ids
    assert sp.kw == {"n": 1, "temperature": 1.0, "max_tokens": 1, "prompt_logprobs": 1, "detokenize": False}
    expected = [fake_logprob(len(prompt) + k, t) for k, t in enumerate(sampled.token_ids)]
    assert a.token_ids == sampled.token_ids and a.token_logprobs == pytest.approx(expected, abs=1e-12)
    assert a.total == pytest.approx(sum(expected), abs=1e-12)
    # a text completion: as the chat template writes the assistant turn, up to its <eos>
    assert TOK.convert_ids_to_tokens(b.token_ids) == [">", "3", "<eos>"]


def test_empty_completion_makes_no_request(fake_vllm):
    g = Generator(str(fake_vllm), backend="vllm", cache=False, progress=False)
    s = g.score([CONV], [[]])[0]
    assert s.total == 0.0 and FakeLLM.last.calls == []


def test_parsing_reads_only_the_completion_positions():
    pl = [None, {5: NS(logprob=-9.0)}, {6: NS(logprob=-0.5), 0: NS(logprob=-0.1)}, {7: NS(logprob=-0.25)}]
    s = from_prompt_logprobs(NS(prompt_logprobs=pl), n_prompt=2, completion=[6, 7])
    assert s.token_logprobs == [-0.5, -0.25] and s.total == -0.75 and math.isfinite(s.total)


@pytest.mark.parametrize("pl, match", [
    (None, "no prompt log-probs"),                                  # prompt_logprobs not requested
    ([None, {5: NS(logprob=-1.0)}], "2 prompt log-probs"),          # shorter than prompt + completion
    ([None, {5: NS(logprob=-1.0)}, {0: NS(logprob=-1.0)}], "lack the token 6"),
])
def test_parsing_errors(pl, match):
    with pytest.raises(RuntimeError, match=match):
        from_prompt_logprobs(NS(prompt_logprobs=pl), n_prompt=2, completion=[6])
