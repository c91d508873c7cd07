r"""Whether two bare answers are equal: normalised strings, shapes, then math-verify.

Order: normalise both (normalize.py); equal strings or equal decimals ("exact", no sympy);
a decimal comma read as such when the other answer is one number ("1000,99" = 1000.99);
answers of different shapes are unequal ("different-type": "3" vs "3, 3"); an ordered
list compares in order; a percent compares both ways ("20\%" = "20" = "0.2"); then
math-verify 0.9.0 (github.com/huggingface/Math-Verify) with each answer wrapped in `$…$`,
since a bare gold would otherwise fall back to its last number ("10, 4, 2" would equal
"4, 12, 2"; REFERENCES.md, Known traps). Every math-verify call is time-bounded from any
thread (bounded.py); a timeout is judged unequal, logged and recorded in TIMEOUTS.

    >>> compare_answers("1,000", "1000"), compare_answers("5", "\\{5\\}")
    ((True, 'exact'), (False, 'different-type'))
"""
from __future__ import annotations

import logging
import re
from fractions import Fraction

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from .bounded import DEFAULT_TIMEOUT, TIMEOUTS, bounded
from .extract import gold_answer
from .normalize import DECIMAL_COMMA_RE, alternatives, comparable, normalize_answer, shape

logger = logging.getLogger(__name__)

# how a comparison was decided (Grade.why)
VERDICTS = ("exact", "math-verify", "unequal", "different-type", "timeout")

_DECIMAL_RE = re.compile(r"-?\d+(?:\.\d+)?|-?\.\d+")
_PERCENT_RE = re.compile(r"\s*\\?%")
_MV_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())


def _fast_equal(gold: str, answer: str) -> bool:
    """Equal normalised strings (ignoring spaces) or equal decimal numbers; no sympy."""
    if gold.replace(" ", "") == answer.replace(" ", ""):
        return True
    if _DECIMAL_RE.fullmatch(gold) and _DECIMAL_RE.fullmatch(answer):
        return Fraction(gold) == Fraction(answer)  # exact: "18" == "18.00"
    return False


def _math_verify(gold: str, answer: str) -> bool:
    """math-verify on two bare answers, each wrapped in $…$, with its signal timeouts off."""
    gold_parsed = parse(f"${gold}$", list(_MV_CONFIG), parsing_timeout=None)
    answer_parsed = parse(f"${answer}$", list(_MV_CONFIG), parsing_timeout=None)
    if not gold_parsed or not answer_parsed:
        return False
    # allow_set_relation_comp: "-2 \le x \le 7" equals the gold "[-2, 7]" (math-verify only tries it the other way)
    return verify(gold_parsed, answer_parsed, timeout_seconds=None, allow_set_relation_comp=True)


def _bounded(fn, args: tuple, timeout: float) -> tuple[bool, bool]:
    """bounded() with a bool verdict: (result, timed_out); an exception is False."""
    result, timed_out = bounded(fn, args, timeout)
    return bool(result), timed_out


def _read_decimal_comma(s: str, other: str) -> str:
    """ "1000,99" -> "1000.99" when `other` is one number; a list otherwise ("-2,1" vs "-2, 1")."""
    if DECIMAL_COMMA_RE.fullmatch(s) and shape(other).kind == "scalar" and not DECIMAL_COMMA_RE.fullmatch(other):
        return s.replace(",", ".")
    return s


def _as_tuple(s: str) -> str:
    """A bare list as a tuple, so that math-verify compares it in order."""
    return f"({s})" if shape(s).kind == "list" else s


def compare_answers(gold: str, answer: str, timeout: float = DEFAULT_TIMEOUT,
                    ordered: bool | None = None) -> tuple[bool, str]:
    """Compare two bare answers: (equal, how), how in VERDICTS.

    `ordered=True` says a bare list gold ("10, 4, -2") is ordered, as a tuple is; by default
    a bare list is a set of solutions (MATH's "separated by commas"), matched in any order.
    A timeout is judged unequal and recorded in TIMEOUTS (and logged)."""
    gold = gold_answer(gold)
    g, a = normalize_answer(gold), normalize_answer(answer)
    if not g or not a:
        return False, "unequal"
    options = alternatives(answer)
    if len(options) > 1 and shape(g).kind not in ("list", "set") and len(alternatives(gold)) == 1:
        # "\boxed{15\frac{39}{40}} or \boxed{\frac{639}{40}}" for one value: every form must equal it
        verdicts = [compare_answers(gold, option, timeout, ordered) for option in options]
        return next((v for v in verdicts if not v[0]), verdicts[0])
    if _fast_equal(g, a):
        return True, "exact"
    g, a = _read_decimal_comma(g, a), _read_decimal_comma(a, g)
    if _fast_equal(g, a):
        return True, "exact"
    if not comparable(shape(g), shape(a)):
        return False, "different-type"
    if ordered:
        g, a = _as_tuple(g), _as_tuple(a)
    readings = [(g, a)]
    if _PERCENT_RE.search(g) or _PERCENT_RE.search(a):
        # "20\%" for gold 20 (the question asked for a percent) and 0.2 for gold "20\%" are both right
        readings.append((_PERCENT_RE.sub("", g), _PERCENT_RE.sub("", a)))
    any_timeout = False
    for g_reading, a_reading in readings:
        if _fast_equal(g_reading, a_reading):
            return True, "exact"
        equal, timed_out = _bounded(_math_verify, (g_reading, a_reading), timeout)
        if equal:
            return True, "math-verify"
        any_timeout |= timed_out
    if any_timeout:
        TIMEOUTS.append((gold, answer))
        logger.warning("math-verify timed out after %.1f s on gold %r vs %r; judged unequal", timeout, gold, answer)
        return False, "timeout"
    return False, "unequal"
