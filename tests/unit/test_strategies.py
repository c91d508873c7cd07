"""Strategies that see the episode: today's words pinned for every existing strategy (generation
cache keys depend on them), execution feedback from a grade's detail, critic feedback, oracle
feedback only after a wrong attempt, Self-Refine's stop, and the episodes they run (scripted
generator, no model)."""
import doctest

import pytest

import sclab.strategies as S
import sclab.train.trl_glue as G
from sclab.generate import SamplingParams
from sclab.rollout import run_episodes
from sclab.strategies import STRATEGIES, Attempt, get_strategy
from sclab.tasks import Grade, Problem, Task
from test_rollout_logic import Scripted  # the scripted generator the rollout tests use

pytestmark = pytest.mark.unit


class Chat(Task):
    """GSM8K's format sentences (sclab.tasks.gsm8k), typed here by hand."""
    name, dialect = "chat-fake", "chat"
    answer_format = 'End your response with a final line of the form "#### <number>".'
    final_answer = "a single numerical number, in the form \\boxed{answer}."

    def grade(self, problem, text):
        ans = text.split()[-1] if text.split() else None
        return Grade(ans == problem.gold, ans, "last-token")


class Bare(Chat):
    """No answer-format sentence, the base class's final-answer phrase."""
    answer_format, final_answer = "", Task.final_answer


class Toy(Chat):
    dialect = "toy"


class Code(Chat):
    """A code-like task: a wrong attempt's grade carries the failing test (indented, two lines) as detail."""
    name, answer_format = "code-fake", ""

    def grade(self, problem, text):
        ans = text.split()[-1] if text.split() else None
        if ans == problem.gold:
            return Grade(True, ans, "tests")
        if ans == "silent":   # a grader that gives no detail
            return Grade(False, ans, "tests")
        return Grade(False, ans, "tests", detail=f"assert f() == {problem.gold}\n    # Real Execution Output:  {ans}")


Q, TOYQ = "What is 2 + 5?", "7 ; +3 -5 ; 2 ?"
RIGHT, WRONG = Attempt("so 7", Grade(True, "7", "last-token")), Attempt("so 3", Grade(False, "3", "last-token"))
HISTORIES = [(), (WRONG,), (RIGHT, WRONG)]   # static strategies say the same words after any of them
FMT = 'End your response with a final line of the form "#### <number>".'

# ---------------------------------------------------------------- today's words, typed from the templates
CHAT = {
    "retry": ["Please solve the problem again. " + FMT],
    "huang-review": ["Review your previous answer and find problems with your answer.",
                     "Based on the problems you found, improve your answer. Please reiterate your answer, with your "
                     "final answer a single numerical number, in the form \\boxed{answer}."],
    "self-refine": ["Give feedback on your previous answer: check each step. If everything is correct, say exactly "
                    "\"It is correct.\"", "Refine your answer using your feedback. " + FMT],
    "cct-reask": ["What is 2 + 5?\n" + FMT],
    "cct-confident": ["What is 2 + 5?\nYour previous answer is probably correct: keep it unless you find a clear "
                      "mistake. " + FMT],
    "cct-critical": ["What is 2 + 5?\nYour previous answer may contain mistakes: check every step carefully and "
                     "correct any error. " + FMT],
    "score-instruction": ["There might be an error in the solution above because of lack of understanding of the "
                          "question. Please correct the error, if any, and rewrite the solution. " + FMT],
    "are-you-sure": ["Are you sure? Think carefully and answer again. " + FMT],
    "oracle-feedback": ["Your answer is incorrect. Please try again. " + FMT],
}
# without an answer-format sentence no trailing space or newline is left behind
BARE = {
    "retry": ["Please solve the problem again."],
    "huang-review": ["Review your previous answer and find problems with your answer.",
                     "Based on the problems you found, improve your answer. Please reiterate your answer, with your "
                     "final answer in the form \\boxed{answer}."],
    "self-refine": ["Give feedback on your previous answer: check each step. If everything is correct, say exactly "
                    "\"It is correct.\"", "Refine your answer using your feedback."],
    "cct-reask": ["What is 2 + 5?"],
    "cct-confident": ["What is 2 + 5?\nYour previous answer is probably correct: keep it unless you find a clear "
                      "mistake."],
    "cct-critical": ["What is 2 + 5?\nYour previous answer may contain mistakes: check every step carefully and "
                     "correct any error."],
    "score-instruction": ["There might be an error in the solution above because of lack of understanding of the "
                          "question. Please correct the error, if any, and rewrite the solution."],
    "are-you-sure": ["Are you sure? Think carefully and answer again."],
    "oracle-feedback": ["Your answer is incorrect. Please try again."],
}
TOY = {"retry": ["again " + TOYQ], "huang-review": ["check " + TOYQ], "self-refine": ["check " + TOYQ],
       "cct-reask": ["again " + TOYQ], "cct-confident": ["confirm " + TOYQ], "cct-critical": ["check " + TOYQ],
       "score-instruction": ["check " + TOYQ], "are-you-sure": ["sure ? " + TOYQ],
       "oracle-feedback": ["wrong again " + TOYQ]}
EXISTING = set(CHAT)


def test_every_existing_strategy_is_pinned():
    assert EXISTING == set(BARE) == set(TOY)
    assert set(STRATEGIES) == EXISTING | {"execution-feedback", "critic-feedback"}


@pytest.mark.parametrize("task,question,expected", [(Chat(), Q, CHAT), (Bare(), Q, BARE), (Toy(), TOYQ, TOY)],
                         ids=["chat", "chat-no-format", "toy"])
@pytest.mark.parametrize("name", sorted(EXISTING))
def test_existing_strategies_say_todays_words(task, question, expected, name):
    st, p = get_strategy(name), Problem("p0", question, "7")
    for history in HISTORIES:
        assert st.turns(task, p, history) == expected[name]
    assert st.turns(task, p) == expected[name]                       # the history is optional
    assert st.messages(task.dialect, task.answer_format, question, task.final_answer) == expected[name]


@pytest.mark.parametrize("name,static,intrinsic,needs_gold,needs_critic", [
    ("retry", True, True, False, False),
    ("huang-review", True, True, False, False),          # two steps, but the same words after any attempt
    ("self-refine", False, True, False, False),          # may stop on its own feedback
    ("oracle-feedback", False, False, True, False),      # the gold label decides when it speaks
    ("execution-feedback", False, False, True, False),   # the grader's tests decide and speak
    ("critic-feedback", False, False, False, True),      # an outside critic speaks
])
def test_what_a_strategy_declares(name, static, intrinsic, needs_gold, needs_critic):
    st = get_strategy(name)
    assert (st.static, st.intrinsic, st.needs_gold, st.needs_critic) == (static, intrinsic, needs_gold, needs_critic)


# ---------------------------------------------------------------- applies / stops

def test_oracle_feedback_applies_only_after_a_wrong_attempt():
    st = get_strategy("oracle-feedback")
    assert st.applies((WRONG,)) and st.applies((RIGHT, WRONG))
    assert not st.applies((RIGHT,)) and not st.applies((WRONG, RIGHT))   # the last attempt decides
    assert get_strategy("retry").applies((RIGHT,))                        # a static one always speaks


@pytest.mark.parametrize("feedback,stops", [
    ("It is correct.", True),
    ("I checked every step. it is CORRECT", True),      # case-insensitive, anywhere in the feedback
    ("It is incorrect.", False),                         # a word boundary: "incorrect" is no verdict of correct
    ("Step 2 is wrong.", False),
])
def test_self_refine_stops_on_its_own_verdict(feedback, stops):
    assert get_strategy("self-refine").stops(feedback) is stops
    assert get_strategy("huang-review").stops(feedback) is False          # no stop rule, never stops


# ---------------------------------------------------------------- execution feedback

def test_execution_feedback_shows_the_failing_test_verbatim():
    p = Problem("c0", "Write f.", "7")
    a = Attempt("return 3", Code().grade(p, "return 3"))
    assert get_strategy("execution-feedback").turns(Code(), p, [RIGHT, a]) == [
        "The code above fails the given unit test:\nassert f() == 7\n    # Real Execution Output:  3\n"
        "Please fix the Python code."]                                 # indentation and double spaces kept
    # the task's answer-format sentence closes it, as in every chat strategy
    assert get_strategy("execution-feedback").turns(Chat(), p, [a])[0].endswith("Please fix the Python code. " + FMT)


def test_execution_feedback_falls_back_to_simple_feedback_without_detail():
    p = Problem("c0", "Write f.", "7")
    silent = Attempt("return silent", Code().grade(p, "return silent"))
    assert silent.grade.detail == ""
    assert get_strategy("execution-feedback").turns(Code(), p, [silent]) == ["The code above is wrong. Please fix it."]


def test_execution_feedback_has_no_toy_wording_and_needs_a_history():
    st, p = get_strategy("execution-feedback"), Problem("t0", TOYQ, "3")
    with pytest.raises(ValueError, match="no toy-dialect wording.*no programs or unit tests"):
        st.turns(Toy(), p, [WRONG])
    with pytest.raises(ValueError, match="no toy-dialect wording"):
        st.turns(Toy(), p, [Attempt("x", Grade(False, None, "none"))])   # the fallback is no way around it
    with pytest.raises(ValueError, match="pass the episode so far"):
        st.turns(Code(), p)


def test_grade_detail_is_a_note():
    a, b = Grade(False, "3", "tests", detail="assert f() == 7"), Grade(False, "3", "tests")
    assert a == b and "detail" not in repr(a) and a.detail == "assert f() == 7" and b.detail == ""


# ---------------------------------------------------------------- critic feedback

def test_critic_feedback_shows_the_critique_and_stands_without_one():
    st, p = get_strategy("critic-feedback"), Problem("p0", Q, "7")
    said = Attempt("so 3", WRONG.grade, critique="Line 2:  5 + 2 is 7, not 3.")
    assert st.turns(Chat(), p, [said]) == [
        "A reviewer checked your previous answer and says:\nLine 2:  5 + 2 is 7, not 3.\nRevise your answer using "
        "this feedback. " + FMT]
    assert st.turns(Toy(), Problem("t0", TOYQ, "3"), [said]) == ["wrong again " + TOYQ]   # the toy world's verdict word
    assert st.applies([said]) and not st.applies([WRONG]) and not st.applies([Attempt("so 3", WRONG.grade, " ")])
    with pytest.raises(ValueError, match="no critique"):
        st.turns(Chat(), p, [WRONG])


# ---------------------------------------------------------------- episodes

def users(hist, key):
    return [m["content"] for m in hist[key] if m["role"] == "user"]


def test_execution_feedback_episode_shows_each_attempts_own_failure():
    # sample 0 is right at once; sample 1 answers 3, then 5, then 7: each turn shows the last attempt's failure
    answers = {0: ["7"], 1: ["3", "5", "7"]}
    gen = Scripted(lambda conv, s: f"return {answers[s][len(conv) // 2]}")
    t = Code()
    df, hist = run_episodes(gen, t, [Problem("c0", "Write f.", "7")], strategy="execution-feedback", turns=3,
                            stop="oracle", params=SamplingParams(n=2), return_histories=True)
    assert users(hist, ("c0", 0)) == ["Write f."]                        # never told anything: right at once
    assert users(hist, ("c0", 1))[1:] == [
        "The code above fails the given unit test:\nassert f() == 7\n    # Real Execution Output:  3\n"
        "Please fix the Python code.",
        "The code above fails the given unit test:\nassert f() == 7\n    # Real Execution Output:  5\n"
        "Please fix the Python code."]
    got = df.pivot(index="sample", columns="turn", values="correct").values.tolist()
    assert got == [[True, True, True], [False, False, True]]
    assert df[df["sample"] == 0]["carried"].tolist() == [False, True, True]
    with pytest.raises(ValueError, match="stop='oracle'"):
        run_episodes(gen, t, [Problem("c0", "Write f.", "7")], strategy="execution-feedback")


def test_execution_feedback_on_the_toy_dialect_fails_before_generating():
    gen = Scripted(lambda conv, s: "> 3")
    with pytest.raises(ValueError, match="no toy-dialect wording"):
        run_episodes(gen, Toy(), [Problem("t0", TOYQ, "3")], strategy="execution-feedback", stop="oracle")
    assert gen.calls == []


def test_oracle_feedback_is_said_only_after_a_wrong_attempt():
    gen = Scripted(lambda conv, s: "so 7" if s == 0 or len(conv) > 1 else "so 3")   # sample 1 wrong, then right
    df, hist = run_episodes(gen, Bare(), [Problem("p0", Q, "7")], strategy="oracle-feedback", stop="oracle",
                            params=SamplingParams(n=2), return_histories=True)
    assert users(hist, ("p0", 0)) == [Q]
    assert users(hist, ("p0", 1)) == [Q, "Your answer is incorrect. Please try again."]
    assert gen.calls[1] == ("turn 2/2 (oracle-feedback)", 1)            # one conversation went on
    t2 = df[df.turn == 2].set_index("sample")
    assert t2.loc[0, "carried"] and t2.loc[0, "tokens"] == 0 and not t2.loc[1, "carried"] and t2.loc[1, "correct"]


def test_self_refine_stop_carries_the_attempt_into_the_next_round():
    # sample 0: its own feedback says correct at turn 2 (kept), then not at turn 3 (refined)
    def fn(conv, sample):
        if len(conv) == 1:
            return "answer 3"
        if conv[-1]["content"].startswith("Give feedback"):
            return "It is correct." if len(conv) == 3 else "Step 1 is wrong."
        return "refined 7"
    df, hist = run_episodes(Scripted(fn), Bare(), [Problem("p0", Q, "7")], strategy="self-refine", turns=3,
                            params=SamplingParams(n=1), return_histories=True)
    rows = df.set_index("turn")
    assert rows.loc[2, "carried"] and rows.loc[2, "response"] == "answer 3" and rows.loc[2, "tokens"] == 3
    assert not rows.loc[3, "carried"] and rows.loc[3, "response"] == "refined 7" and rows.loc[3, "correct"]
    assert rows.loc[3, "feedback"] == "Step 1 is wrong."
    # question, feedback request (stopped), feedback request, refine request
    assert len(users(hist, ("p0", 0))) == 4


def test_critic_feedback_episode():
    seen = []

    def critic(problems, attempts):
        seen.append([a.text for a in attempts])
        return ["" if a.grade.correct else f"The answer {a.grade.extracted} is wrong." for a in attempts]
    gen = Scripted(lambda conv, s: "so 7" if s == 0 or len(conv) > 1 else "so 3")
    df, hist = run_episodes(gen, Chat(), [Problem("p0", Q, "7")], strategy="critic-feedback", critic=critic,
                            params=SamplingParams(n=2), return_histories=True)
    assert seen == [["so 7", "so 3"]]                                    # both latest attempts, intrinsic stop
    assert users(hist, ("p0", 0)) == [Q + "\n" + FMT]                    # no objection: the attempt stands
    assert users(hist, ("p0", 1))[1] == ("A reviewer checked your previous answer and says:\nThe answer 3 is wrong."
                                         "\nRevise your answer using this feedback. " + FMT)
    t2 = df[df.turn == 2].set_index("sample")
    assert t2.loc[0, "carried"] and t2.loc[0, "feedback"] == "" and t2.loc[0, "tokens"] == 0
    assert t2.loc[1, "feedback"] == "The answer 3 is wrong." and t2.loc[1, "correct"]


@pytest.mark.parametrize("kwargs,error,match", [
    ({"strategy": "critic-feedback"}, ValueError, "pass critic=fn"),
    ({"strategy": "retry", "critic": lambda ps, ats: [""] * len(ats)}, ValueError,
     "critic= is read only by.*critic-feedback"),
    ({"strategy": "critic-feedback", "critic": lambda ps, ats: "wrong"}, TypeError, "one str per attempt"),
    ({"strategy": "critic-feedback", "critic": lambda ps, ats: [None] * len(ats)}, TypeError, "one str per attempt"),
])
def test_critic_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        run_episodes(Scripted(lambda conv, s: "so 3"), Chat(), [Problem("p0", Q, "7")], **kwargs)


def test_doctests():
    assert doctest.testmod(S).failed == 0
    assert doctest.testmod(G).failed == 0
