"""sclab.sharpening.search on the shipped toy model: beam 1 x expand 1 at T = 0 is greedy decoding, the
reported self-reward is an independent forward pass, one step over the whole solution is best-of-expand,
a step ends on its line's `;`, prefix sharing does not change a sample, and an unpruned beam never finds
less than a narrower one on the same seeds."""
import pytest
import torch

from sclab.generate import SamplingParams, row_seed
from sclab.rollout import first_turn
from sclab.sharpening import (SEARCH_COLUMNS, delimiter_counts, greedy_pool, line_beam, sample_pool, search_curves,
                              search_records, segment_lines)
from sclab.tasks import get_task

pytestmark = pytest.mark.smoke
TASK = get_task("arith")
PROBS = TASK.problems(12, seed=23)     # 12 problems: each search below takes ~1-3 s on one core
CONVS = [first_turn(p, TASK) for p in PROBS]
MAX_NEW = 64                           # the longest toy solution (6 x 2 lines) is 63 tokens with EOS
TOL = 1e-4                             # float32 on CPU: padded batches vs one unpadded forward pass


def forward_logprobs(model, prompt, completion):
    """Independent reference: one unpadded forward pass, log softmax at T = 1 of each completion token."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion).unsqueeze(-1)).squeeze(-1).tolist()


def test_beam_one_expand_one_at_t0_is_greedy_decoding(toy, toy_generator):
    model, tok = toy
    greedy = toy_generator.generate(CONVS, SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW))
    for growth in (1.0, 2.0):   # one line a step, or IDS-style growing segments: greedy either way
        found = line_beam(model, tok, CONVS, beam=1, expand=1, temperature=0.0, step_growth=growth,
                          max_new_tokens=MAX_NEW, progress=False)
        for p, f, (g,) in zip(PROBS, found, greedy):
            assert f.completion.token_ids == g.token_ids and f.completion.text == g.text
            assert f.self_reward == pytest.approx(g.logprob, abs=TOL)
            assert f.generated_tokens == g.tokens and f.pruned == 0 and f.completion.finish_reason == "stop"
            lines = g.text.count(";") + 1   # the answer `> r` ends on EOS: one step more than the lines
            covered = [sum(segment_lines(i, 1, growth) for i in range(k)) for k in range(1, 20)]
            assert f.steps == next(k for k, c in enumerate(covered, 1) if c >= lines)


def test_the_self_reward_is_an_independent_forward_pass(toy, toy_generator):
    model, tok = toy
    found = line_beam(model, tok, CONVS, beam=2, expand=3, temperature=1.0, max_new_tokens=MAX_NEW, progress=False)
    for p, conv, f in zip(PROBS, CONVS, found):
        ref = forward_logprobs(model, toy_generator.backend.encode(conv), f.completion.token_ids)
        assert f.completion.token_logprobs == pytest.approx(ref, abs=TOL)
        assert f.self_reward == pytest.approx(sum(ref), abs=TOL) == f.finished[0]
        assert f.finished == sorted(f.finished, reverse=True)
        assert TASK.grade(p, f.completion.text).extracted is not None   # a complete answer


def test_one_step_over_the_whole_solution_is_best_of_expand(toy, toy_generator):
    model, tok = toy
    found = line_beam(model, tok, CONVS, beam=1, expand=4, step_lines=100, max_new_tokens=MAX_NEW, seed=2,
                      progress=False)
    params = SamplingParams(temperature=1.0, max_new_tokens=MAX_NEW)
    for conv, f in zip(CONVS, found):
        prompt = toy_generator.backend.encode(conv)   # the search's seeds: row_seed(seed, context, j)
        samples = toy_generator.backend.generate_rows([(prompt, row_seed(2, prompt, j)) for j in range(4)], params,
                                                      progress=False)
        rewards = [sum(forward_logprobs(model, prompt, s.token_ids)) for s in samples]
        best = max(range(4), key=lambda j: rewards[j])
        assert f.steps == 1 and f.generated_tokens == sum(s.tokens for s in samples)
        assert f.completion.token_ids == samples[best].token_ids
        assert f.self_reward == pytest.approx(rewards[best], abs=TOL)


def test_a_step_ends_on_its_kth_delimiter_and_sharing_a_prefix_changes_no_sample(toy, toy_generator):
    model, tok = toy
    backend = toy_generator.backend
    counts = delimiter_counts(tok, ";", model.get_input_embeddings().num_embeddings)
    ctx = [backend.encode(c) for c in CONVS[:6] for _ in range(3)]
    reqs = [(x, row_seed(5, x, j % 3)) for j, x in enumerate(ctx)]
    params = SamplingParams(temperature=1.0, max_new_tokens=MAX_NEW)
    alone = backend.generate_rows(reqs, params, progress=False, delimiters=(counts, 2))
    shared = backend.generate_rows(reqs, params, progress=False, delimiters=(counts, 2), share=3)
    for a, s in zip(alone, shared):
        assert a.token_ids == s.token_ids and a.token_logprobs == pytest.approx(s.token_logprobs, abs=TOL)
        assert a.text.count(";") == 2 and a.text.endswith(";")   # two lines, cut right after the second `;`
    with pytest.raises(ValueError, match="must share one conversation"):
        backend.generate_rows(reqs[1:4], params, progress=False, share=3)


def test_an_unpruned_beam_never_finds_less_than_a_narrower_one(toy):
    # a wider beam can end lower in general (tests/unit: a counterexample); a beam that cut nothing
    # saw every candidate a narrower one did (same seeds per prefix), so its best is at least theirs
    model, tok = toy
    kw = dict(expand=2, temperature=1.5, max_new_tokens=MAX_NEW, seed=4, progress=False)   # T 1.5: a bushier tree
    wide = line_beam(model, tok, CONVS, beam=64, **kw)
    unpruned = [i for i, f in enumerate(wide) if f.pruned == 0]
    assert len(unpruned) >= 10
    for beam in (1, 2, 4):
        narrow = line_beam(model, tok, CONVS, beam=beam, **kw)
        for i in unpruned:
            assert wide[i].self_reward >= narrow[i].self_reward - TOL


def test_search_records_and_the_equal_token_table(toy_generator):
    recs = search_records(toy_generator, TASK, PROBS, beam=2, expand=2, max_new_tokens=MAX_NEW, progress=False)
    assert len(recs) == len(PROBS) and set(SEARCH_COLUMNS) <= set(recs.columns)
    assert (recs["strategy"] == "line-beam").all()
    assert recs["correct"].tolist() == [TASK.grade(p, t).correct for p, t in zip(PROBS, recs["response"])]
    assert (recs["generated_tokens"] >= recs["tokens"]).all()   # the answer's own tokens were generated too
    pool = sample_pool(toy_generator, TASK, PROBS, SamplingParams(n=8, max_new_tokens=MAX_NEW, seed=1))
    greedy = greedy_pool(toy_generator, TASK, PROBS, max_new_tokens=MAX_NEW)
    t = search_curves(pool, greedy, {"2x2": recs}, n_boot=100)
    row = t[t["method"] == "2x2"].iloc[0]
    assert row["acc"] == pytest.approx(recs["correct"].mean())
    assert row["tokens"] == pytest.approx(recs["generated_tokens"].mean())
