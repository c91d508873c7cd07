"""Answer extraction, normalisation, math equality, lm-eval's GSM8K extraction, bounded grading."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import sclab.grading as grading
from sclab.grading import (compare_answers, extract_answer, extract_answer_with_rule, grade_math, gsm8k_flexible,
                           gsm8k_match, gsm8k_strict, math_equal, normalize_answer)
from sclab.tasks import Grade
from sclab.tasks.files import data_dir

pytestmark = pytest.mark.unit


def _data():
    try:
        return data_dir()
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(f"benchmark data directory not found: {e}")


EXTRACTION = [
    # (response, expected answer, expected rule)
    ("so $x=3$ and \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),  # braces balanced inside the box
    ("first \\boxed{1}, then \\boxed{\\{2, 3\\}}", "\\{2, 3\\}", "boxed"),  # the LAST box wins
    ("\\fbox{7} is it", "7", "boxed"),  # \fbox counts as a box
    ("the result: \\boxed 9.", "9", "boxed"),  # TeX's brace-less \boxed 9
    ("\\boxed{4} then a cut-off \\boxed{5", "4", "boxed"),  # an unbalanced (truncated) box is skipped
    ("The answer is 18.", "18", "answer-is"),  # trailing period stripped
    ("So the final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}", "answer-is"),  # Minerva's phrase
    ("THE ANSWER IS: **72**", "72", "answer-is"),  # case-insensitive, colon and bold stripped
    ("The answer is\n\n$5$", "5", "answer-is"),  # the answer on the next line
    ("The answer is 3.5. Done", "3.5", "answer-is"),  # a decimal point is not a sentence end
    ("The answer is 18 dollars.", "18 dollars", "answer-is"),  # the unit is dropped later, by normalisation
    ("the answer isn't 4, it is 5", "5", "last-number"),  # "isn't" is not "is"
    ("9 * 2 = 18\n#### 1,000", "1,000", "####"),  # GSM8K's own format; commas kept for normalisation
    ("#### **42**.", "42", "####"),  # bold and period stripped
    ("The answer is 4.\n#### 5", "4", "answer-is"),  # answer-is comes before ####
    ("\\frac{3}{4}", "\\frac{3}{4}", "bare"),  # a bare answer; last-number would give "4"
    ("p - q", "p - q", "bare"),  # no number at all
    ("(3, \\frac{\\pi}{2})", "(3, \\frac{\\pi}{2})", "bare"),  # a tuple
    ("42", "42", "last-number"),  # a plain number is simply the last number
    ("$42$", "42", "last-number"),  # math dollars around a plain number
    ("3 - 4 is -1, and then 1,234.", "1,234", "last-number"),  # thousands kept together, period dropped
    ("it is -7 degrees", "-7", "last-number"),  # the minus sign belongs to the number
    ("I think the total is 5 apples", "5", "last-number"),  # prose is not a bare answer
    ("no digits here at all", None, "none"),  # nothing found: recorded, never silently scored
    ("", None, "none"),  # an empty response
]


@pytest.mark.parametrize("text, answer, rule", EXTRACTION)
def test_extract_answer_with_rule(text, answer, rule):
    assert extract_answer_with_rule(text) == (answer, rule)
    assert extract_answer(text) == answer


NORMALIZE = [
    # (answer, normalised)
    ("1,000", "1000"),  # thousands separators
    ("1{,}000", "1000"),  # LaTeX's thousands separator
    ("10, 4, 2", "10, 4, 2"),  # a tuple keeps its commas
    ("\\$18", "18"),  # escaped dollar
    ("$18.$", "18"),  # math dollars and a trailing period
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "( 3, \\frac{\\pi}{2} )"),  # \left/\right dropped
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),  # \dfrac -> \frac
    ("\\tfrac12", "\\frac12"),  # \tfrac -> \frac
    ("90^\\circ", "90"),  # degrees
    ("90^{\\circ}", "90"),  # degrees with braces
    ("10\\text{ inches}", "10"),  # a \text unit
    ("4\\text{ cm}^2", "4"),  # a squared unit
    ("\\text{Evelyn}", "Evelyn"),  # a whole-\text answer is unwrapped, not dropped
    ("18 dollars", "18"),  # a plain-word unit
    ("6 - 5i", "6 - 5i"),  # a complex number keeps its i
    ("x = 5", "5"),  # leading "x ="
    ("x=1, y=2", "x=1, y=2"),  # two assignments are left to math-verify
    ("\\!1\\,000", "1000"),  # \! and thin spaces
    ("\\boxed{7}", "7"),  # a boxed gold is unwrapped
]


@pytest.mark.parametrize("answer, expected", NORMALIZE)
def test_normalize_answer(answer, expected):
    assert normalize_answer(answer) == expected


EQUAL = [
    # (gold, prediction, expected verdict)
    ("1,000", "1000", True),  # thousands separator
    ("1000", "The answer is 1,000.", True),  # ... in a response
    ("\\dfrac{1}{2}", "0.5", True),  # fraction vs decimal (math-verify)
    ("\\$18", "18", True),  # dollar units
    ("18", "#### 18.00", True),  # "18.00" is 18
    ("\\frac{3}{4}", "so $\\boxed{\\frac34}$", True),  # \frac34 shorthand
    ("(3, \\frac{\\pi}{2})", "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", True),  # \left/\right
    ("90^\\circ", "The answer is 90.", True),  # degrees
    ("10", "\\boxed{10\\text{ inches}}", True),  # \text unit
    ("5", "x = 5", True),  # leading "x ="
    ("18", "The answer is 18 dollars.", True),  # a plain-word unit
    ("18", "9 * 2 = 18", True),  # a bare equation: its right-hand side
    ("1,-2", "\\boxed{-2, 1}", True),  # a set of solutions in another order
    ("3\\sqrt{13}", "\\boxed{\\sqrt{117}}", True),  # symbolic equality
    ("\\text{Evelyn}", "\\boxed{\\text{Evelyn}}", True),  # a name
    ("10, 4, 2", "4, 12, 2", False),  # the math-verify trap: a bare gold must not fall back to "2"
    ("10, 4, 2", "10, 4", False),  # a shorter tuple
    ("18", "The answer is 17.", False),  # a wrong number
    ("1000", "10, 0, 0", False),  # commas with spaces are not thousands separators
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}", False),  # a wrong fraction
    ("[-2, 1]", "(-2, 1)", False),  # closed vs open interval
    ("p - q", "\\boxed{q - p}", False),  # the sign matters
    ("5", "no number here", False),  # nothing extracted
]


@pytest.mark.parametrize("gold, prediction, expected", EQUAL)
def test_math_equal(gold, prediction, expected):
    assert math_equal(gold, prediction) is expected


def test_compare_answers_says_how():
    assert compare_answers("1,000", "1000") == (True, "exact")  # the fast path, no sympy
    assert compare_answers("\\dfrac{1}{2}", "0.5") == (True, "math-verify")
    assert compare_answers("10, 4, 2", "4, 12, 2") == (False, "unequal")
    assert compare_answers("5", "") == (False, "unequal")  # an empty answer


def test_grade_math_records_rule():
    assert grade_math("18", "so 9*2 = 18. The answer is 18.") == Grade(True, "18", "answer-is")
    assert grade_math("18", "#### 17") == Grade(False, "17", "####")
    grade = grade_math("18", "I do not know")
    assert (grade.correct, grade.extracted, grade.how, grade.failed_extraction) == (False, None, "none", True)


GSM8K_LM_EVAL = [
    # (response, strict, flexible)
    ("9 * 2 = 18\n#### 18", "18", "18"),  # the reference format
    ("#### 5\n#### 7", "5", "7"),  # strict takes the FIRST match, flexible the LAST
    ("So 9 * 2 = 18. The answer is 18.", "18.", "18."),  # "The answer is" for strict; the period is kept
    ("The answer is 18. Check: 18 / 2 = 9", "18.", "9"),  # flexible takes whatever number comes last
    ("I have $18.00 left", None, "$18.00"),  # flexible keeps "$" and decimals
    ("It costs 5 dollars and 3 cents", None, "3"),  # single digits come from the second group
    ("#### -1,450,000", "-1,450,000", "-1,450,000"),  # negative with separators
    ("no digits", None, None),  # nothing to extract
]


@pytest.mark.parametrize("text, strict, flexible", GSM8K_LM_EVAL)
def test_gsm8k_lm_eval_extraction(text, strict, flexible):
    assert (gsm8k_strict(text), gsm8k_flexible(text)) == (strict, flexible)


GSM8K_MATCH = [
    # (gold, extracted, lm-eval exact_match)
    ("18", "18", True),  # identical
    ("18", "18.", True),  # trailing period ignored
    ("1450000", "1,450,000", True),  # commas ignored
    ("18", "$18", True),  # dollar ignored
    ("18", "$18.00", False),  # lm-eval is exact: "18.00" is not "18"
    ("18", "17", False),  # wrong
    ("18", None, False),  # nothing extracted
]


@pytest.mark.parametrize("gold, extracted, expected", GSM8K_MATCH)
def test_gsm8k_match(gold, extracted, expected):
    assert gsm8k_match(gold, extracted) is expected


def test_grading_from_non_main_threads():
    # math-verify's own SIGALRM timeouts raise ValueError outside the main thread; ours must not
    results = []
    worker = threading.Thread(target=lambda: results.append(math_equal("\\dfrac{1}{2}", "0.5")))
    worker.start()
    worker.join(30)
    assert results == [True]
    cases = [(g, p, e) for g, p, e in EQUAL]
    with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent grading, as a sampler's callback would do
        verdicts = list(pool.map(lambda c: math_equal(c[0], c[1]), cases))
    assert verdicts == [e for _, _, e in cases]


def test_timeout_from_non_main_thread(monkeypatch):
    def stuck(gold, answer):  # stands in for a sympy simplify that never ends
        time.sleep(3)
        return True

    monkeypatch.setattr(grading, "_math_verify", stuck)
    before = len(grading.TIMEOUTS)
    out = []

    def run():
        start = time.perf_counter()
        out.append((compare_answers("\\frac{1}{2}", "0.5", timeout=0.2), time.perf_counter() - start))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    (verdict, elapsed), = out
    assert verdict == (False, "timeout")  # a timeout is judged unequal ...
    assert elapsed < 1.5  # ... within the bound (0.2 s), not after the 3 s the call would take
    assert len(grading.TIMEOUTS) == before + 1 and grading.TIMEOUTS[-1] == ("\\frac{1}{2}", "0.5")  # ... and recorded
    assert math_equal("1,000", "1000", timeout=0.2)  # the fast path never needs math-verify


def test_gsm8k_model_solutions_agree_with_labels():
    # GPT-3 6B/175B solutions released with GSM8K, each labelled is_correct by OpenAI: 4 x 1319 real attempts
    path = _data() / "gsm8k" / "example_model_solutions.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    disagreements, total = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            gold = row["ground_truth"].split("A:")[-1].strip()  # this file ends solutions with "A: N"
            for model in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
                total += 1
                if grade_math(gold, row[model]["solution"]).correct != row[model]["is_correct"]:
                    disagreements.append((row["question"][:40], model))
    assert total == 4 * 1319
    assert disagreements == []
