"""Generation: seeds fix samples whatever the batching; the cache returns them without the model."""
import pytest
import torch

from sclab.generate import Generator, SamplingParams, row_seed
from sclab.models import fingerprint, load, resolve

pytestmark = pytest.mark.smoke

CONVS = [[{"role": "user", "content": "3 ; + 1 * 2 ; 2 ?"}], [{"role": "user", "content": "5 ; * 3 - 2 ; 4 ?"}],
         [{"role": "user", "content": "0 ; - 4 + 9 ; 1 ?"}]]
P = SamplingParams(n=3, max_new_tokens=24, seed=7)  # 24 tokens keeps each call < 1 s


@pytest.fixture(scope="module")
def tiny():
    return load("toy:arith-tiny")  # a few training steps: builds in seconds


def texts(out):
    return [[c.text for c in row] for row in out]


def test_fixed_seed_identical_across_batching_and_order(tiny):
    model, tok = tiny
    a = Generator(model, tok, cache=False, progress=False, batch_size=64).generate(CONVS, P)
    b = Generator(model, tok, cache=False, progress=False, batch_size=2).generate(CONVS[::-1], P)
    assert texts(a) == texts(b)[::-1]
    # sample i does not depend on n
    c = Generator(model, tok, cache=False, progress=False).generate(CONVS, SamplingParams(n=1, max_new_tokens=24, seed=7))
    assert [r[0].text for r in c] == [r[0] for r in texts(a)]
    # another seed gives other samples (the untrained-ish tiny model is near uniform: collisions are rare)
    d = Generator(model, tok, cache=False, progress=False).generate(CONVS, SamplingParams(n=3, max_new_tokens=24, seed=8))
    assert texts(d) != texts(a)


def test_logprob_is_sum_of_token_logprobs_under_model(tiny):
    model, tok = tiny
    g = Generator(model, tok, cache=False, progress=False)
    comp = g.generate(CONVS[:1], P)[0][0]
    # independent recomputation: one forward pass over prompt + completion
    prompt = g.backend.encode(CONVS[0])
    ids = torch.tensor([prompt + comp.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1:-1]
    lp = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(comp.token_ids).unsqueeze(-1)).sum()
    assert comp.logprob == pytest.approx(float(lp), abs=1e-3)
    assert comp.tokens == len(comp.token_ids)


def test_greedy_is_argmax_and_samples_agree(tiny):
    model, tok = tiny
    out = Generator(model, tok, cache=False, progress=False).generate(CONVS, SamplingParams(n=2, temperature=0, max_new_tokens=16))
    assert all(r[0].token_ids == r[1].token_ids for r in out)


def test_cache_hit_does_not_call_the_model(tiny, tmp_path):
    model, tok = tiny
    g = Generator(model, tok, cache=tmp_path / "c.sqlite", progress=False)
    first = g.generate(CONVS, P)
    calls = []
    orig = g.backend.generate_rows
    g.backend.generate_rows = lambda *a, **k: calls.append(1) or orig(*a, **k)
    again = g.generate(CONVS, P)
    assert calls == []                      # every sample came from the cache
    assert texts(again) == texts(first)
    assert all(c.cached for r in again for c in r)
    assert [c.logprob for c in again[0]] == [c.logprob for c in first[0]]
    # a new sample index is generated, the old ones still read from the cache
    more = g.generate(CONVS, SamplingParams(n=4, max_new_tokens=24, seed=7))
    assert len(calls) == 1 and texts(more)[0][:3] == texts(first)[0]


def test_fingerprint_changes_when_weights_change(tiny):
    model, _ = tiny
    fp = fingerprint(model)
    with torch.no_grad():
        p = next(model.parameters())
        saved = p.clone()
        p.add_(1.0)
        changed = fingerprint(model)
        p.copy_(saved)
    assert changed != fp and fingerprint(model) == fp


def test_truncation_is_reported(tiny):
    model, tok = tiny
    out = Generator(model, tok, cache=False, progress=False).generate(CONVS[:1], SamplingParams(n=4, max_new_tokens=2))
    assert all(c.tokens <= 2 for c in out[0])
    assert any(c.finish_reason == "length" for c in out[0])


@pytest.mark.parametrize("spec, err, match", [
    ("/nonexistent/model", FileNotFoundError, "does not exist"),   # a path that is not there
    ("./nope", FileNotFoundError, "does not exist"),               # relative too
    ("toy:nope", ValueError, "toy:arith"),                         # lists the valid toy models
    ("not a hub id", ValueError, "hub id"),
])
def test_resolve_errors(spec, err, match):
    with pytest.raises(err, match=match):
        resolve(spec)


def test_path_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve(str(tmp_path))


def test_row_seed_depends_on_sample_and_messages():
    assert row_seed(0, CONVS[0], 0) != row_seed(0, CONVS[0], 1) != row_seed(0, CONVS[1], 1)
    assert row_seed(0, CONVS[0], 0) == row_seed(0, [dict(m) for m in CONVS[0]], 0)


def test_vllm_missing_is_a_clear_error():
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="pip install"):
        Generator("toy:arith-tiny", backend="vllm", cache=False)


def test_unknown_backend():
    with pytest.raises(ValueError, match="hf, vllm"):
        Generator("toy:arith-tiny", backend="tgi")
