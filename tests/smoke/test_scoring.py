"""Teacher-forced scoring on the hf backend: a sampled completion rescored gives the log-prob its
sampler reported, whatever the batch; tempered sampling is not the score; text and gold completions."""
import doctest
import math
from pathlib import Path

import pytest
import torch

from sclab.generate import Completion, Generator, SamplingParams
from sclab.models import load
from sclab.rollout import first_turn
from sclab.tasks import get_task

pytestmark = pytest.mark.smoke
TASK = get_task("arith")
PROBS = TASK.problems(12, seed=5)
CONVS = [first_turn(p, TASK) for p in PROBS]
TOL = 1e-4  # float32 on CPU: a KV-cached decode and one full forward pass agree to ~1e-5 per sequence


@pytest.fixture(scope="module")
def tiny():
    return load("toy:arith-tiny")  # a few training steps: built in seconds; near-uniform, so long varied samples


@pytest.fixture(scope="module")
def gen(tiny):
    model, tok = tiny
    return Generator(model, tok, cache=False, progress=False)


def samples(gen, params):
    """(conversation, completion) for every sample of every problem."""
    out = gen.generate(CONVS, params)
    return [(CONVS[i], c) for i, row in enumerate(out) for c in row]


def forward_logprobs(model, prompt, completion, temperature=1.0):
    """Independent reference: one unpadded forward pass over prompt + completion."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float()
    lp = torch.log_softmax(logits / temperature, -1).gather(-1, torch.tensor(completion).unsqueeze(-1)).squeeze(-1)
    return lp.tolist()


def test_rescoring_a_t1_sample_gives_the_samplers_logprob(gen):
    pairs = samples(gen, SamplingParams(n=3, temperature=1.0, top_p=1.0, max_new_tokens=48, seed=1))  # 36 samples
    assert {c.finish_reason for _, c in pairs} == {"stop", "length"}  # with and without the EOS token
    scored = gen.score([conv for conv, _ in pairs], [c for _, c in pairs])
    for (_, comp), s in zip(pairs, scored):
        assert s.token_ids == comp.token_ids and s.tokens == comp.tokens
        assert s.total == pytest.approx(comp.logprob, abs=TOL)
        assert s.token_logprobs == pytest.approx(comp.token_logprobs, abs=TOL)
        assert s.total == pytest.approx(sum(s.token_logprobs), abs=1e-9)


def test_scores_match_an_unpadded_forward_pass(gen, tiny):
    model, _ = tiny
    pairs = samples(gen, SamplingParams(n=1, max_new_tokens=32, seed=2))
    scored = gen.score([conv for conv, _ in pairs], [c for _, c in pairs])
    for (conv, comp), s in zip(pairs, scored):
        assert s.token_logprobs == pytest.approx(forward_logprobs(model, gen.backend.encode(conv), comp.token_ids),
                                                 abs=TOL)


def test_score_does_not_depend_on_batch(gen):
    pairs = samples(gen, SamplingParams(n=2, max_new_tokens=40, seed=3))
    convs, comps = [conv for conv, _ in pairs], [c for _, c in pairs]
    lengths = [len(gen.backend.encode(conv)) + c.tokens for conv, c in pairs]
    short = lengths.index(min(lengths))
    assert min(lengths) < max(lengths)                      # the short row is left-padded in the batch
    batched = gen.score(convs, comps, batch_size=64)
    alone = gen.score([convs[short]], [comps[short]], batch_size=1)[0]
    assert alone.total == pytest.approx(batched[short].total, abs=TOL)
    assert alone.token_logprobs == pytest.approx(batched[short].token_logprobs, abs=TOL)
    reordered = gen.score(convs[::-1], comps[::-1], batch_size=5)[::-1]   # other batches, other padding
    assert [s.total for s in reordered] == pytest.approx([s.total for s in batched], abs=TOL)


def test_tempered_sampling_is_not_the_score(gen, tiny):
    """At T = 0.5 the sample was drawn from softmax(logits / 0.5), but sclab's sampler records the
    temperature-1 log-prob, which is what score() returns; the tempered log-prob is another number."""
    model, _ = tiny
    pairs = samples(gen, SamplingParams(n=2, temperature=0.5, max_new_tokens=32, seed=4))
    scored = gen.score([conv for conv, _ in pairs], [c for _, c in pairs])
    far = 0
    for (conv, comp), s in zip(pairs, scored):
        assert s.total == pytest.approx(comp.logprob, abs=TOL)
        tempered = sum(forward_logprobs(model, gen.backend.encode(conv), comp.token_ids, temperature=0.5))
        far += abs(tempered - s.total) > 0.1                 # 1000x the float tolerance
    assert far >= len(pairs) // 2


def test_gold_solution_scores_finite_with_and_without_eos(gen, tiny):
    _, tok = tiny
    gold = [p.meta["solution"] for p in PROBS]
    with_eos = gen.score(CONVS, gold)
    without = gen.score(CONVS, gold, eos=False)
    for text, a, b in zip(gold, with_eos, without):
        words = tok(text, add_special_tokens=False)["input_ids"]
        assert a.token_ids == words + [tok.eos_token_id]       # the template's assistant turn ends with <eos>
        assert b.token_ids == words
        assert math.isfinite(a.total) and a.total < 0
        assert a.total == pytest.approx(b.total + a.token_logprobs[-1], abs=TOL)


def test_text_of_a_sample_tokenises_to_its_tokens(gen, tiny):
    _, tok = tiny
    special = set(tok.all_special_ids)
    pairs = [(conv, c) for conv, c in samples(gen, SamplingParams(n=3, max_new_tokens=48, seed=1))
             if c.finish_reason == "stop" and not special & set(c.token_ids[:-1])]  # decoding drops special tokens
    assert len(pairs) >= 5
    by_text = gen.score([conv for conv, _ in pairs], [c.text for _, c in pairs])
    by_ids = gen.score([conv for conv, _ in pairs], [c.token_ids for _, c in pairs])
    for (_, comp), a, b in zip(pairs, by_text, by_ids):
        assert a.token_ids == comp.token_ids and a.total == pytest.approx(b.total, abs=1e-9)


def test_raw_prompt_and_token_id_prompt(gen, tiny):
    model, tok = tiny
    prompt = "<user> 3 ; + 1 * 2 ; 2 ? <eos> <assistant>"
    comp = gen.generate([prompt], SamplingParams(max_new_tokens=16, seed=5))[0][0]
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    raw, as_ids = gen.score([prompt, ids], [comp, comp])
    assert raw.total == pytest.approx(comp.logprob, abs=TOL) and as_ids.total == pytest.approx(raw.total, abs=1e-9)
    assert raw.token_logprobs == pytest.approx(forward_logprobs(model, ids, comp.token_ids), abs=TOL)


def test_scores_are_cached(tiny, tmp_path):
    model, tok = tiny
    g = Generator(model, tok, cache=tmp_path / "c.sqlite", progress=False)
    comps = [row[0] for row in g.generate(CONVS[:4], SamplingParams(max_new_tokens=16, seed=6))]
    first = g.score(CONVS[:4], comps)
    calls = []
    orig = g.backend.score_rows
    g.backend.score_rows = lambda rows, **k: calls.append(len(rows)) or orig(rows, **k)
    again = g.score(CONVS[:4], comps)
    assert calls == [] and again == first
    g.score(CONVS[:4], [p.meta["solution"] for p in PROBS[:4]])
    assert calls == [4]                                      # other completions: scored, not served


def test_model_is_left_as_it_was(gen, tiny):
    model, _ = tiny
    model.train()
    try:
        gen.score(CONVS[:1], [PROBS[0].meta["solution"]])
        assert model.training                                # scored in eval mode, then restored
    finally:
        model.eval()


@pytest.mark.parametrize("completions, err, match", [
    (["a"], ValueError, "one completion per conversation"),          # one too few
    ("text", ValueError, "one completion per conversation"),         # a bare string, not a list
    ([{"role": "assistant"}, "x"], TypeError, "Completion, a str or a list of token ids"),
])
def test_bad_input(gen, completions, err, match):
    with pytest.raises(err, match=match):
        gen.score(CONVS[:2], completions)


def test_bad_batch_size(gen):
    with pytest.raises(ValueError, match="batch_size"):
        gen.score(CONVS[:1], ["1"], batch_size=0)


def test_empty_completion_scores_zero(gen):
    empty = Completion(text="", token_ids=[], logprob=0.0, tokens=0, time=0.0, finish_reason="stop")
    s = gen.score(CONVS[:1], [empty])[0]
    assert s.total == 0.0 and s.token_ids == [] and s.mean == 0.0


def test_doctests():
    import sclab.generate
    import sclab.generate.hf
    import sclab.paths

    for module in (sclab.generate, sclab.generate.hf, sclab.paths):
        assert doctest.testmod(module).failed == 0


def test_cache_path_follows_sclab_cache_dir(monkeypatch, tmp_path):
    from sclab.generate import default_cache_path
    from sclab.toy.build import cache_root as toy_cache_root

    monkeypatch.setenv("SCLAB_CACHE_DIR", str(tmp_path))
    assert default_cache_path() == tmp_path / "generations.sqlite" and toy_cache_root() == tmp_path
    monkeypatch.delenv("SCLAB_CACHE_DIR")
    assert default_cache_path().parent == Path.home() / ".cache" / "sclab"
