"""Answer extraction, normalisation, math equality, lm-eval's GSM8K extraction, bounded grading."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import sclab.grading as grading
import sclab.grading.compare as grading_compare
from sclab.grading import (Shape, compare_answers, extract_answer, extract_answer_with_rule, grade_math,
                           gsm8k_flexible, gsm8k_match, gsm8k_strict, math_equal, normalize_answer, shape)
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
    ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5", "math-verify"),  # a relation, not its bound "5"
    ("It is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.", "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}",
     "math-verify"),  # a matrix, not its last entry
    ("The domain is $[0, 1)$ here", "[0, 1)", "math-verify"),  # an interval, not "1"
    ("so $\\mathbf{R} = \\begin{pmatrix} -1 \\end{pmatrix}.$", "\\begin{pmatrix} -1 \\end{pmatrix}",
     "math-verify"),  # "R = matrix" does not parse in sympy: its right-hand side does
    ("is 2/3. <|im_start|>user", "2/3", "math-verify"),  # an expression; the last number is "3"
    ("there are 1 000 of them", "1 000", "math-verify"),  # space thousands: the last number is "000"
    ("Soucis : 2,74 $ a..", "2,74", "last-number"),  # a decimal comma is one number
    ("\\boxed{-2} and \\boxed{1}", "-2, 1", "boxed"),  # one box per root: a list
    ("\\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", "1, -2", "boxed"),  # ... across math spans
    ("$y_1 = \\boxed{5}$ and $y_2 = \\boxed{7}$", "5, 7", "boxed"),  # ... with the items named
    ("\\boxed{1} or \\boxed{-2}", "1 or -2", "boxed"),  # "or" is kept: compare_answers reads it by the gold
    ("\\boxed{2}. Wait, actually the sum is \\boxed{3}", "3", "boxed"),  # prose between boxes: the last one
    ("so $\\boxed{255}$. Final Answer: The final answer is $10,455$. I hope it is correct.", "10,455",
     "final-answer"),  # a boxed step, then the final answer
    ("\\boxed{12}. So the final answer is correct.", "12", "boxed"),  # "the final answer is correct" is no answer
    ("The final answer is $12$ and $13$.", "12, 13", "answer-is"),  # several math spans after "answer is"
    ("Answer $ \\frac{1}{2} $ and more", "\\frac{1}{2}", "math-verify"),  # prose around math is not "bare"
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
    ("11,\\! 111,\\! 100", "11111100"),  # \\! after a thousands comma (MATH500 test/number_theory/417.json)
    ("32, 349", "32, 349"),  # a plain space after the comma: a list
    ("0,111", "0,111"),  # not a thousands grouping (0 starts no group): compare_answers decides
    ("1 000", "1000"),  # space thousands
    ("{1,3}", "1,3"),  # LaTeX grouping braces are not a set
    ("28 percent", "28\\%"),  # percent words
    ("(x, y) = (5, 8)", "(5, 8)"),  # an assignment to a tuple of names
    ("y = 2x + 1", "y = 2x + 1"),  # an equation with a variable on the right stays one
    ("1, 2, and 3", "1, 2, 3"),  # "and" in a list
    ("1 \\quad \\text{and} \\quad 2", "1, 2"),  # ... with spacing
    ("(11,7)or(7,11)", "(11,7), (7,11)"),  # "or" between tuples
    ("\\langle 1, 2 \\rangle", "( 1, 2 )"),  # math-verify would read <1,2> as 1.2
    ("\\\\frac{1}{2}", "\\frac{1}{2}"),  # escaped backslashes
]


@pytest.mark.parametrize("answer, expected", NORMALIZE)
def test_normalize_answer(answer, expected):
    assert normalize_answer(answer) == expected


SHAPES = [
    # (answer, shape)
    ("5", Shape("scalar")),  # a number
    ("x = 5", Shape("scalar")),  # an assignment has its value's shape
    ("x \\geq 5", Shape("relation")),  # an inequality
    ("2x+4y-3=0", Shape("relation")),  # an equation that is no assignment
    ("1, -2", Shape("list", 2)),  # a bare list: a set or a tuple, as the other answer says
    ("-12;-11;-10", Shape("list", 3)),  # semicolons separate too
    ("1 \\pm \\sqrt{19}", Shape("list", 2)),  # \\pm is two values
    ("(6,31,-1)", Shape("tuple", 3)),  # an ordered triple
    ("(p,q) = (3,2)", Shape("tuple", 2)),  # ... assigned
    ("\\{1, 2\\}", Shape("set", 2)),  # a set
    ("\\emptyset", Shape("set", 0)),  # the empty set
    ("[0, 1)", Shape("interval", 2)),  # half-open
    ("(2,\\infty)", Shape("interval", 2)),  # unbounded
    ("(0,9) \\cup (9,36)", Shape("interval", 2)),  # a union
    ("x \\in [-2,7]", Shape("interval", 2)),  # "x \\in" is dropped
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", Shape("matrix")),  # a vector is a matrix
    ("\\text{(C)}", Shape("scalar")),  # a choice
]


@pytest.mark.parametrize("answer, expected", SHAPES)
def test_shape(answer, expected):
    assert shape(normalize_answer(answer)) == expected


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
    ("1000.99", "1000,99", True),  # a decimal comma when the gold is one number
    ("-2,1", "\\boxed{-2, 1}", True),  # ... but a list when the gold is a list (MATH500 test/intermediate_algebra/1102.json)
    ("3", "\\boxed{3, 3}", False),  # a number is not a list (math-verify: a set {3})
    ("\\{1, 2\\}", "\\boxed{(2, 1)}", False),  # a set is not a tuple
    ("(6,31,-1)", "\\boxed{31, 6, -1}", False),  # a tuple's order matters
    ("\\frac{639}{40}", "\\boxed{15\\frac{39}{40}} or \\boxed{\\frac{639}{40}}", True),  # two forms of one value
    ("1", "\\boxed{1} or \\boxed{-2}", False),  # ... but two values are not one
    ("20", "\\boxed{20\\%}", True),  # a percent sign the gold omits
    ("[-2, 7]", "$-2 \\le x \\le 7$", True),  # an interval as an inequality
]


@pytest.mark.parametrize("gold, prediction, expected", EQUAL)
def test_math_equal(gold, prediction, expected):
    assert math_equal(gold, prediction) is expected


def test_compare_answers_says_how():
    assert compare_answers("1,000", "1000") == (True, "exact")  # the fast path, no sympy
    assert compare_answers("\\dfrac{1}{2}", "0.5") == (True, "math-verify")
    assert compare_answers("10, 4, 2", "4, 12, 2") == (False, "unequal")
    assert compare_answers("5", "") == (False, "unequal")  # an empty answer
    assert compare_answers("5", "\\{5\\}") == (False, "different-type")  # no sympy for a type mismatch
    assert compare_answers("10, 4, -2", "4, 10, -2") == (True, "math-verify")  # a bare list: any order ...
    assert compare_answers("10, 4, -2", "4, 10, -2", ordered=True) == (False, "unequal")  # ... unless ordered


def test_grade_records_why():
    grade = grade_math("5", "\\boxed{\\{5\\}}")
    assert (grade.correct, grade.extracted, grade.how, grade.why) == (False, "\\{5\\}", "boxed", "different-type")
    assert grade == Grade(False, "\\{5\\}", "boxed")  # `why` is a note, not part of the verdict
    assert grade_math("5", "I do not know").why == "nothing extracted"


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

    monkeypatch.setattr(grading_compare, "_math_verify", stuck)
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
