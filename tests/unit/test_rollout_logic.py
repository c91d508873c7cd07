"""Episode logic with a scripted generator (no model): stopping rules, multi-step strategies, costs."""
import pytest

from sclab.generate import Completion
from sclab.metrics import correction_metrics
from sclab.rollout import run_episodes
from sclab.tasks import Grade, Problem, Task

pytestmark = pytest.mark.unit


class Scripted:
    """Answers each conversation with a function of it; 3 tokens per completion."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def generate(self, convs, params, desc="", sample_ids=None):
        self.calls.append((desc, len(convs)))
        ids = sample_ids or [None] * len(convs)
        return [[Completion(text=self.fn(c, s if s is not None else i), token_ids=[1, 2, 3], logprob=-1.0, tokens=3,
                            time=0.01, finish_reason="stop")
                 for i in range(params.n)] for c, s in zip(convs, ids)]


class Chat(Task):
    name, dialect, answer_format = "chat-fake", "chat", "Answer with a number."

    def problems(self, n=None, split="test", seed=0):
        return [Problem(f"q{i}", f"question {i}", "7") for i in range(n or 2)]

    def grade(self, problem, text):
        ans = text.split()[-1] if text.split() else None
        return Grade(ans == problem.gold, ans, "last-token")


def test_self_refine_stops_on_own_feedback():
    def fn(conv, sample):
        last = conv[-1]["content"]
        if len(conv) == 1:
            return "answer 7" if sample == 0 else "answer 3"       # sample 0 right, sample 1 wrong
        if last.startswith("Give feedback"):
            return "It is correct." if sample == 0 else "Step 2 is wrong."
        return "refined 7"                                        # the refinement fixes it
    t = Chat()
    gen = Scripted(fn)
    df = run_episodes(gen, t, t.problems(1), strategy="self-refine", turns=2,
                      params=__import__("sclab.generate", fromlist=["SamplingParams"]).SamplingParams(n=2))
    t2 = df[df.turn == 2].set_index("sample")
    assert t2.loc[0, "carried"] and t2.loc[0, "response"] == "answer 7"   # kept: its own feedback said correct
    assert not t2.loc[1, "carried"] and t2.loc[1, "response"] == "refined 7"
    assert t2.loc[0, "tokens"] == 3 and t2.loc[1, "tokens"] == 6          # feedback tokens count as cost
    assert t2.loc[1, "feedback"] == "Step 2 is wrong."
    # the refine step was only asked of the sample that did not stop
    assert [c for c in gen.calls if "step 2/2" in c[0]] == [("turn 2/2 (self-refine, step 2/2)", 1)]
    m = correction_metrics(df)
    assert (m["delta_i2c"], m["delta_c2i"]) == (0.5, 0.0)


def test_oracle_stop_three_turns_carries_once_right():
    answers = {0: ["3", "7", "3"], 1: ["7", "3", "3"]}  # sample 0 fixed at turn 2; sample 1 right at once
    t = Chat()
    from sclab.generate import SamplingParams

    def fn(conv, sample):
        return f"answer {answers[sample][len(conv) // 2]}"
    df = run_episodes(Scripted(fn), t, t.problems(1), strategy="retry", stop="oracle", turns=3, params=SamplingParams(n=2))
    got = df.pivot(index="sample", columns="turn", values="correct").values.tolist()
    assert got == [[False, True, True], [True, True, True]]     # turn 3 of sample 0 is carried, not the "3"
    assert df.set_index(["sample", "turn"]).loc[(0, 3), "carried"]


def test_cct_reask_repeats_the_question_without_a_second_format_line():
    t = Chat()
    from sclab.generate import SamplingParams

    seen = []
    gen = Scripted(lambda conv, s: seen.append(conv[-1]["content"]) or "answer 7")
    run_episodes(gen, t, t.problems(1), strategy="cct-reask", params=SamplingParams(n=1))
    assert seen[-1] == "question 0\nAnswer with a number."
