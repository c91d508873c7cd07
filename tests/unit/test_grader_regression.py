r"""Grader regression table: sclab's grader and math-verify alone on the same cases, per category.

Each case is (category, gold, response, expected verdict, source[, ordered]); "source" names
where the case comes from (a math-verify test, a MATH500 unique_id, REFERENCES.md, or sclab's
own reason). "math-verify alone" is the baseline sclab must beat: `verify(parse("$gold$"),
parse(response))` with math-verify 0.9.0's default configs (gold wrapped in $…$, the
documented fix for the bare-gold trap). sclab must be right on every case; REFERENCE pins
the per-category counts (cases, sclab right, math-verify-alone right), so a change in either
grader shows here. Print the table with `pytest tests/unit/test_grader_regression.py -s`.
"""
from __future__ import annotations

import collections
from typing import NamedTuple

import pytest
from math_verify import parse, verify

from sclab.grading import grade_math
from sclab.grading.bounded import bounded

pytestmark = pytest.mark.unit


class Case(NamedTuple):
    category: str
    gold: str
    response: str
    expected: bool
    source: str
    ordered: bool | None = None


MV = "math-verify tests/test_all.py"
MATRIX_2 = r"\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}"
CASES = [
    # --- matrices: found in a $…$ span, not graded by their last entry ---------------------------
    Case("matrices", MATRIX_2, r"The identity matrix is $ \begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix} $.", True,
         f"{MV}::test_matrix_extraction"),
    Case("matrices", r"\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix}",
         r"The matrix is $\begin{pmatrix}1 & 2 \\ 3 & 5\end{pmatrix}$", False, f"{MV}::test_matrix_extraction"),
    Case("matrices", r"\begin{bmatrix}0 & 0 \\0 & 0\end{bmatrix}",
         r"Here is a zero matrix: $ \begin{pmatrix}0 & 0 \\0 & 0\end{pmatrix} $", True, f"{MV}::test_matrix_extraction"),
    Case("matrices", MATRIX_2, r"When multiplying by identity: $\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix} "
         r"\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}$", True, f"{MV}::test_matrix_extraction"),
    Case("matrices", r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
         r"so the rotation by $180^\circ$ is $\mathbf{R} = \begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}.$", True,
         "MATH500 test/precalculus/920.json, unboxed"),
    Case("matrices", r"\begin{pmatrix} -2 \\ -14 \\ -7 \end{pmatrix}",
         r"Hence the vector is $\begin{pmatrix} -2 \\ -14 \\ 7 \end{pmatrix}.$", False,
         "MATH500 test/precalculus/263.json, one sign wrong"),
    Case("matrices", "-1", r"Hence the product is $\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}$.", False,
         "sclab: a matrix is not its last entry (last-number read -1)"),
    # --- relations and inequalities -------------------------------------------------------------------
    Case("relations", r"x \geq 5", r"Therefore $x \geq 5$ is the solution.", True, f"{MV}::test_relations_math"),
    Case("relations", "x < 3", r"We find that $x \lt 3$.", True, f"{MV}::test_relations_math"),
    Case("relations", "5", r"Therefore $x \geq 5$ is the solution.", False,
         "sclab: an inequality is not its bound (last-number read 5)"),
    Case("relations", "x > 5", r"Therefore $x < 5$ is the solution.", False, f"{MV}::test_relations_math"),
    Case("relations", r"x \leq 5", r"$5 \geq x$", True, f"{MV}::test_relations_math (flipped)"),
    Case("relations", "x < 1", r"Multiplying by -1, $-x > -1$.", True, f"{MV}::test_relations_math"),
    Case("relations", "2x+4y-3=0", r"$y=-\frac{1}{2}x+\frac{3}{4}$", True, f"{MV}::test_relations_math"),
    Case("relations", r"x \in [-2,7]", r"The solution set is $-2 \le x \le 7$.", True,
         "MATH500 test/algebra/101.json, as an inequality"),
    Case("relations", "11", r"So $x = 5+5+1 = 11$.", True, f"{MV}::test_relations_math (last = counts)"),
    # --- intervals ------------------------------------------------------------------------------
    Case("intervals", "[0,1)", r"The domain is $[0,1)$.", True, f"{MV}::test_sets_handling"),
    Case("intervals", "(0,9)", r"The domain is $[0,9)$.", False, f"{MV}::test_sets_handling"),
    Case("intervals", "(3,4]", r"so $\lambda \in (3,4]$.", True, "MATH500 test/intermediate_algebra/558.json"),
    Case("intervals", r"(-\infty, 2) \cup (3, \infty)", r"The domain is $(-\infty, 2) \cup (3, \infty)$.", True,
         "MATH500 test/algebra/2043.json, unboxed"),
    Case("intervals", r"(-\infty, 2) \cup (3, \infty)", r"The domain is $(-\infty, 2] \cup [3, \infty)$.", False,
         "MATH500 test/algebra/2043.json, closed ends"),
    Case("intervals", r"(-\infty, 0]", r"The range is $(-\infty, 0)$.", False, "MATH500 test/precalculus/695.json"),
    Case("intervals", "3", r"The range is $(-\infty, 3)$.", False,
         "sclab: an interval is not its endpoint (last-number read 3)"),
    Case("intervals", r"(5,\infty)", r"We need $x > 5$.", True, "MATH500 test/intermediate_algebra/1714.json"),
    Case("intervals", r"(2, 12) \cup (12, 102)", r"Thus, the answer is $x \in \boxed{(2,12) \cup (12,102)}$", True,
         f"{MV}::test_math_extraction_additional_cases"),
    # --- sets (any order) vs tuples (in order) ----------------------------------------------------
    Case("sets-tuples", "10, 4, 2", "4, 12, 2", False, "REFERENCES.md Known traps (bare gold -> last number)"),
    Case("sets-tuples", "(10, 4, -2)", r"\boxed{(4, 10, -2)}", False, "sclab: a tuple is ordered"),
    Case("sets-tuples", "10, 4, -2", r"\boxed{4, 10, -2}", False, "sclab: an ordered list (ordered=True)", True),
    Case("sets-tuples", "10, 4, -2", r"\boxed{10, 4, -2}", True, "sclab: an ordered list in order", True),
    Case("sets-tuples", "1,-2", r"So $n = \boxed{-2, 1}$.", True, "MATH500 test/intermediate_algebra/1388.json"),
    Case("sets-tuples", r"\{1\pm\sqrt{5},-2\}", r"\boxed{\{-2, 1+\sqrt{5}, 1-\sqrt{5}\}}", True,
         "MATH500 test/intermediate_algebra/2015.json"),
    Case("sets-tuples", r"\{1, 2\}", r"\boxed{\{2, 1\}}", True, "sclab: a set in any order"),
    Case("sets-tuples", r"\{1, 2\}", r"\boxed{(2, 1)}", False, "sclab: a set is not a tuple"),
    Case("sets-tuples", "(1, 2)", r"\boxed{\{1, 2\}}", False, "sclab: a tuple is not a set"),
    Case("sets-tuples", "(6,31,-1)", r"Then $(p,q,r) = \boxed{(6,31,-1)}.$", True,
         "MATH500 test/intermediate_algebra/956.json"),
    Case("sets-tuples", "(6,31,-1)", r"\boxed{6, 31, -1}", True, "MATH500 test/intermediate_algebra/956.json, no parentheses"),
    Case("sets-tuples", "(6,31,-1)", r"\boxed{31, 6, -1}", False, "MATH500 test/intermediate_algebra/956.json, reordered"),
    Case("sets-tuples", "-2,1", r"The integer roots are $\boxed{-2}$ and $\boxed{1}$.", True,
         "MATH500 test/intermediate_algebra/1102.json, one box per root"),
    Case("sets-tuples", "(7,6)", r"So, the ordered pair $(x, y)$ that solves the system is $(7, 6)$.", True,
         f"{MV}::test_math_extraction_edge_cases (last-number read 6)"),
    Case("sets-tuples", "(3,1)", r"${1,3}$", False, f"{MV}::test_math_extraction_additional_cases"),
    # --- decimal commas vs thousands separators ---------------------------------------------------------
    Case("decimal-commas", "1000.99", "1000,99", True, "math-verify tests/test_all.py::test_number_extraction"),
    Case("decimal-commas", "2.74", "Soucis : 2,74 $ a..", True, "math-verify tests/test_all.py::test_number_extraction"),
    Case("decimal-commas", "0.111", "0,111", True, "math-verify tests/test_all.py::test_number_extraction (0 starts no group)"),
    Case("decimal-commas", "2.5", r"Il faut $2,5$ litres.", True, "sclab: a decimal comma inside $…$"),
    Case("decimal-commas", "1234.567", "1234,567", True, "sclab: 4 digits cannot start a thousands group"),
    Case("decimal-commas", "1500", "The answer is 1,500.", True, "sclab: thousands separator"),
    Case("decimal-commas", "1.5", "The answer is 1,500.", False, "sclab: 3 digits after the comma are thousands"),
    Case("decimal-commas", "7425000", "7,425,000", True, "math-verify tests/test_all.py::test_number_extraction"),
    Case("decimal-commas", "1000.99", "$1,000.99", True, "math-verify tests/test_all.py::test_number_extraction"),
    Case("decimal-commas", "-2,1", r"\boxed{-2, 1}", True, "MATH500 test/intermediate_algebra/1102.json (a list, not -2.1)"),
    Case("decimal-commas", "32349", r"is $\boxed{32, 349}$", False, f"{MV}::test_math_extraction_additional_cases"),
    # --- \! thousands separators -----------------------------------------------------------------
    Case("backslash-bang", r"11,\! 111,\! 111,\! 100", r"\boxed{11111111100}", True, "MATH500 test/number_theory/417.json"),
    Case("backslash-bang", "11111111100", r"is $\boxed{11,\! 111,\! 111,\! 100}$", True,
         f"{MV}::test_math_extraction_additional_cases"),
    Case("backslash-bang", r"10,\!080", r"There are $\boxed{10{,}080}$ ways.", True,
         "MATH500 test/counting_and_probability/508.json"),
    Case("backslash-bang", r"10,\!080", r"\boxed{10,\!081}", False, "MATH500 test/counting_and_probability/508.json, off by one"),
    Case("backslash-bang", r"\$32,\!348", r"The investment is worth $\boxed{\$32,\!348}$.", True,
         "MATH500 test/algebra/2626.json"),
    Case("backslash-bang", "32349", r"is $\boxed{32,\! 349}$", True, f"{MV}::test_math_extraction_additional_cases"),
    Case("backslash-bang", r"58,500", r"So there are $\boxed{58,\!500}$ plates.", True,
         "MATH500 test/counting_and_probability/737.json"),
    # --- boxed vs unboxed, and which of several answers counts ----------------------------------------------
    Case("boxed-unboxed", r"\frac{14}{3}", r"$=2+\frac{5}{3}+1=\boxed{\frac{14}{3}}$", True,
         "MATH500 test/algebra/2584.json"),
    Case("boxed-unboxed", "10455", r"so $\boxed{255}$ in interest. Altogether $10,200 + $255 = $10,455. "
         r"Final Answer: The final answer is $10,455$. I hope it is correct.", True,
         f"{MV}::test_math_extraction_additional_cases (final answer after a boxed step)"),
    Case("boxed-unboxed", "2/3", r"P(A) = 2/3 Therefore, the probability that Alice wins the game is 2/3. <|im_start|>user",
         True, f"{MV}::test_math_extraction_edge_cases (last-number read 3)"),
    Case("boxed-unboxed", r"\frac{639}{40}", r"$d = 15\frac{975}{1000} = \boxed{15\frac{39}{40}},$ or $\boxed{\frac{639}{40}}$ inches.",
         True, "MATH500 test/number_theory/459.json (its solution): two forms of one value"),
    Case("boxed-unboxed", "1", r"So $n = \boxed{1}$ or $n = \boxed{-2}$.", False, "sclab: two boxed values are not one"),
    Case("boxed-unboxed", "1,-2", r"So $n = \boxed{1}$ or $n = \boxed{-2}$.", True, "MATH500 test/intermediate_algebra/1388.json"),
    Case("boxed-unboxed", "15", "The answer 12 was wrong: 3 more boxes arrive, so the total is 15.", True,
         "sclab: a second attempt (math-verify's anchor 'answer ... 12' picks the old answer)"),
    Case("boxed-unboxed", "10/9", r"Answer $ \frac{1}{2} \$ = \frac{10}{9} $", True, f"{MV}::test_latex_notation"),
    Case("boxed-unboxed", "4", r"\boxed{4} then a cut-off \boxed{5", True, "sclab: a truncated box is skipped"),
    Case("boxed-unboxed", "12", r"\boxed{12}. Let me check: 3 * 4 = 12, so the final answer is correct.", True,
         "sclab: 'the final answer is correct' is not an answer"),
    # --- percent, units, dollars --------------------------------------------------------------------
    Case("percent-units", r"28\%", "The loss is 28 percent.", True, f"{MV}::test_percent_notation"),
    Case("percent-units", r"28\%", r"a total loss of $\boxed{28\%}$.", True, f"{MV}::test_latex_notation_math"),
    Case("percent-units", "20", r"So $\boxed{20\%}$ of the people are children.", True,
         "sclab: the gold omits the % the question asked for"),
    Case("percent-units", "0.28", r"\boxed{28\%}", True, "sclab: 28% is 0.28"),
    Case("percent-units", "28", r"\boxed{29\%}", False, "sclab: a wrong percent"),
    Case("percent-units", r"\$18", "The answer is 18 dollars.", True, "GSM8K test/0 (Janet's ducks)"),
    Case("percent-units", r"15\mbox{ cm}^2", r"$$\frac{1}{2}\times 3 \times 10 = \boxed{15\mbox{ cm}^2}.$$", True,
         f"{MV}::test_latex_notation_math"),
    Case("percent-units", "125", r"The distance is $\boxed{125\textnormal{ miles}}.$", True, f"{MV}::test_latex_notation_math"),
    Case("percent-units", "1000.99", "the number is not 10 which is 1,000.99€", True, f"{MV}::test_number_extraction"),
    Case("percent-units", r"5.4 \text{ cents}", r"Each costs $\boxed{5.4}$ cents.", True, "MATH500 test/prealgebra/1044.json"),
    # --- fractions ----------------------------------------------------------------------------
    Case("fractions", r"\frac{1}{2}", r"\boxed{0.5}", True, "sclab: fraction vs decimal"),
    Case("fractions", "10/9", r"$\frac{10}{9}$", True, "math-verify tests/test_all.py::test_simple_fraction_notation"),
    Case("fractions", "1/3", r"$\frac13 $", True, f"{MV}::test_latex_notation (malformed \\frac)"),
    Case("fractions", r"\frac{3}{4}", r"\frac{3}{4}", True, "sclab: a bare fraction (last-number read 4)"),
    Case("fractions", "4", r"So the ratio is $\frac{3}{4}$.", False, "sclab: a fraction is not its denominator"),
    Case("fractions", r"\frac{1}{2}", r"\boxed{\frac{1}{3}}", False, "sclab: a wrong fraction"),
    Case("fractions", "2", r"$\frac{1+\sqrt{5}}{2}$", False, "math-verify tests/test_all.py::test_complex_math_expressions"),
    Case("fractions", r"\frac{3}{56}", r"so \[p(8) = \frac{q(8) + 8}{8^2 - 1} = \boxed{\frac{3}{56}}.\]", True,
         "MATH500 test/intermediate_algebra/1197.json"),
    Case("fractions", r"\frac{270}7\text{ degrees}", r"Each angle is $\boxed{\frac{270}{7}}$ degrees.", True,
         "MATH500 test/prealgebra/1003.json"),
    # --- different-type answers: never equal -----------------------------------------------------------
    Case("different-type", "3", r"\boxed{3, 3}", False, "sclab: a number is not a list"),
    Case("different-type", "5", r"\boxed{\{5\}}", False, "sclab: a number is not a set"),
    Case("different-type", "5", r"$[5,5]$", False, "sclab: a number is not an interval"),
    Case("different-type", "(3, 5)", r"\boxed{5}", False, "sclab: a tuple is not a number"),
    Case("different-type", "5", r"\boxed{(5, 5)}", False, "sclab: a number is not a tuple"),
    Case("different-type", r"x \geq 5", r"\boxed{5}", False, "sclab: a relation is not its bound"),
    Case("different-type", "[-2, 7]", r"\boxed{-2, 7}", False, "sclab: an interval is not a list of its ends"),
    Case("different-type", "2", r"$\begin{pmatrix} 2 \end{pmatrix}$", False, "sclab: a number is not a matrix"),
    Case("different-type", "x = 5", r"\boxed{5}", True, "sclab: an assignment is its value (not a type change)"),
    Case("different-type", r"(-\infty, 3)", r"\boxed{x < 3}", True, "sclab: an interval as an inequality"),
]


def math_verify_alone(gold: str, response: str) -> bool:
    """The baseline: math-verify's own extraction and verify, gold wrapped in $…$, time-bounded."""
    def run():
        return verify(parse(f"${gold}$", parsing_timeout=None), parse(response, parsing_timeout=None),
                      timeout_seconds=None)
    result, _ = bounded(run, (), 10.0)
    return bool(result)


# category -> (cases, sclab right, math-verify alone right); math-verify 0.9.0
REFERENCE = {
    "matrices": (7, 7, 6),
    "relations": (9, 9, 8),
    "intervals": (9, 9, 8),
    "sets-tuples": (15, 15, 12),
    "decimal-commas": (11, 11, 10),
    "backslash-bang": (7, 7, 7),
    "boxed-unboxed": (10, 10, 9),
    "percent-units": (10, 10, 10),
    "fractions": (9, 9, 9),
    "different-type": (10, 10, 6),
}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}-{i}" for i, c in enumerate(CASES)])
def test_sclab_grades_case(case):
    grade = grade_math(case.gold, case.response, ordered=case.ordered)
    assert grade.correct is case.expected, f"{case.source}: extracted {grade.extracted!r} by {grade.how}, {grade.why}"


def regression_table() -> dict[str, tuple[int, int, int]]:
    """category -> (cases, sclab right, math-verify alone right)."""
    table: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for case in CASES:
        row = table[case.category]
        row[0] += 1
        row[1] += grade_math(case.gold, case.response, ordered=case.ordered).correct is case.expected
        row[2] += math_verify_alone(case.gold, case.response) is case.expected
    return {k: tuple(v) for k, v in table.items()}


def test_regression_table_against_math_verify_alone():
    table = regression_table()
    print("\ncategory          cases  sclab  math-verify alone")
    for category, (n, sclab_right, mv_right) in table.items():
        print(f"{category:17} {n:5} {sclab_right:6} {mv_right:8}")
    assert all(sclab_right == n for n, sclab_right, _ in table.values())  # sclab is right on every case
    assert all(sclab_right >= mv_right for _, sclab_right, mv_right in table.values())
    assert table == REFERENCE  # the counts in the report; a change in either grader shows here
