"""Episodes: the records table, stopping rules, shared first turns, multi-step strategies."""
import pytest

from sclab.generate import Generator, SamplingParams
from sclab.metrics import correction_metrics
from sclab.records import COLUMNS
from sclab.rollout import run_episodes
from sclab.tasks import Grade, Problem, Task, get_task

pytestmark = pytest.mark.smoke
P = SamplingParams(n=2, temperature=1.0, max_new_tokens=160, seed=3)


@pytest.fixture(scope="module")
def task():
    return get_task("arith")


@pytest.fixture(scope="module")
def probs(task):
    return task.problems(30, seed=3)  # 30 problems x 2 samples keeps each run < 5 s


def test_records_table_shape(toy_generator, task, probs):
    df = run_episodes(toy_generator, task, probs, turns=3, params=P)
    assert list(df.columns) == COLUMNS + list(task.label_columns)   # the toy world labels every attempt
    assert len(df) == 30 * 2 * 3
    assert df.groupby(["problem_id", "sample"]).turn.apply(list).map(lambda t: t == [1, 2, 3]).all()
    # every grade is recomputable from the stored response
    for _, r in df.sample(20, random_state=0).iterrows():
        prob = next(p for p in probs if p.id == r.problem_id)
        assert task.grade(prob, r.response).correct == r.correct


def test_oracle_stop_carries_right_answers(toy_generator, task, probs):
    df = run_episodes(toy_generator, task, probs, strategy="retry", stop="oracle", params=P)
    t1 = df[df.turn == 1].set_index(["problem_id", "sample"])
    t2 = df[df.turn == 2].set_index(["problem_id", "sample"])
    assert (t2.carried == t1.correct).all()          # exactly the right first attempts are carried
    assert (t2[t2.carried].tokens == 0).all()        # and nothing was generated for them
    assert correction_metrics(df)["delta_c2i"] == 0


def test_strategies_share_turn_one_through_the_cache(toy, task, probs, tmp_path):
    model, tok = toy
    g = Generator(model, tok, cache=tmp_path / "c.sqlite", progress=False)
    a = run_episodes(g, task, probs, strategy="retry", params=P)
    calls = []
    orig = g.backend.generate_rows
    g.backend.generate_rows = lambda reqs, *x, **k: calls.append(len(reqs)) or orig(reqs, *x, **k)
    b = run_episodes(g, task, probs, strategy="are-you-sure", params=P)
    assert calls == [30 * 2]                          # only the second turns were generated
    assert (a[a.turn == 1].response.values == b[b.turn == 1].response.values).all()


def test_oracle_feedback_needs_oracle_stop(toy_generator, task, probs):
    with pytest.raises(ValueError, match="stop='oracle'"):
        run_episodes(toy_generator, task, probs, strategy="oracle-feedback", params=P)


def test_unknown_strategy_lists_valid(toy_generator, task, probs):
    with pytest.raises(KeyError, match="huang-review"):
        run_episodes(toy_generator, task, probs, strategy="self-critique-xyz", params=P)


class EchoChat(Task):
    """A chat-dialect task for structure tests: the toy model cannot read English, but the
    episode's messages can be checked."""

    name, dialect, answer_format = "echo", "chat", "in the form \\boxed{answer}."

    def problems(self, n=None, split="test", seed=0):
        return [Problem(f"echo/{i}", "3 ; + 1 * 2 ; 1 ?", "6") for i in range(n or 2)]

    def grade(self, problem, text):
        return Grade(text.endswith(problem.gold), text[-1:] or None, "last-char")


def test_huang_review_is_two_user_turns(toy_generator):
    t = EchoChat()
    df, hist = run_episodes(toy_generator, t, t.problems(2), strategy="huang-review", params=P, return_histories=True)
    conv = hist[("echo/0", 0)]
    users = [m["content"] for m in conv if m["role"] == "user"]
    assert users[1] == "Review your previous answer and find problems with your answer."
    assert users[2].startswith("Based on the problems you found, improve your answer.")
    assert users[2].endswith("\\boxed{answer}.")
    assert len(conv) == 6                             # question, a1, review, feedback, improve, a2
    assert (df[df.turn == 2].feedback == [m["content"] for m in conv if m["role"] == "assistant"][1]).any()
