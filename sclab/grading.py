r"""Answer extraction and math grading: the final answer of a response, and whether it equals the gold.

Extraction order for a whole response: the last `\boxed{}` (or `\fbox{}`), "The answer is …",
`#### …`, a one-line bare answer, the last number. Every extraction records its rule, so
an extraction failure is counted, never silently scored (STYLE.md).

Equality is a cheap normalised string/number match first, then math-verify 0.9.0
(github.com/huggingface/Math-Verify) with the normalisations it lacks. Gold answers are
wrapped in `$…$` before math-verify parses them: a bare gold otherwise falls back to its
last number ("10, 4, 2" would equal "4, 12, 2"; REFERENCES.md, Known traps). math-verify's
own timeouts use SIGALRM, which only works in the main thread, so they are disabled and
every math-verify call runs in a worker thread joined with a timeout instead.

GSM8K is also graded as lm-eval-harness does (EleutherAI, lm_eval/tasks/gsm8k): "strict"
(`#### N`) and "flexible" (the last number-like token), which can differ a lot on one run.

    >>> from sclab.grading import math_equal
    >>> math_equal("\\frac{3}{4}", "So the answer is $\\boxed{0.75}$."), math_equal("10, 4, 2", "4, 12, 2")
    (True, False)
"""
from __future__ import annotations

import collections
import logging
import re
import threading
from fractions import Fraction

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from sclab.tasks.base import Grade

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0  # seconds per math-verify comparison; sympy's simplify can run for minutes
RULES = ("boxed", "answer-is", "####", "bare", "last-number", "none")

# (gold, answer) pairs whose math-verify comparison timed out (verdict False); newest last.
# Bounded so a long run cannot grow it without limit.
TIMEOUTS: collections.deque[tuple[str, str]] = collections.deque(maxlen=1000)

# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
_ANSWER_IS_RE = re.compile(r"answer\s+is\b\s*:?\s*(.*)", re.IGNORECASE)  # "is:\n\n18" too
_HASHES_RE = re.compile(r"####[ \t]*(.*)")
# "1,000" is one number but "10, 4" is two: commas only as thousands separators
_NUMBER_RE = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+")
_PROSE_RE = re.compile(r"[A-Za-z]+\s+[A-Za-z]+")  # two words in a row: a sentence, not an answer
_LATEX_CMD_RE = re.compile(r"\\[A-Za-z]+(?:\{[^{}]*\})?")


def last_boxed(text: str) -> str | None:
    r"""The contents of the last balanced `\boxed{…}` / `\fbox{…}` in `text` (`\boxed 5` too), or None."""
    found = None
    for m in _BOX_RE.finditer(text):
        rest = text[m.end():]
        if rest.startswith("{"):
            depth = 0
            for i, ch in enumerate(rest):
                depth += {"{": 1, "}": -1}.get(ch, 0)
                if depth == 0:
                    found = rest[1:i].strip()
                    break
            # an unbalanced box (a truncated response) is skipped: an earlier one may still count
        else:
            # "\boxed 5": TeX takes the next token as the argument
            token = re.match(r"\s+([^\s$.,]+)", rest)
            if token:
                found = token.group(1)
    return found


def _clean_answer_tail(tail: str) -> str:
    r"""What follows "answer is": cut at the end of the math span or the sentence."""
    tail = tail.replace("**", "").strip()
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if tail.startswith(opener):
            end = tail.find(closer, len(opener))
            if end > 0:
                return tail[len(opener):end].strip()
    # "18. I hope it is correct." -> "18"; a decimal point is not followed by a space
    tail = re.split(r"\.\s", tail)[0]
    return tail.strip().rstrip(".").strip("$ ")


def _last_number(text: str) -> str | None:
    numbers = _NUMBER_RE.findall(text)
    return numbers[-1] if numbers else None


def _is_bare_answer(text: str) -> bool:
    r"""True for a one-line answer with no prose ("\frac{3}{4}", "p - q", "(3, 5)")."""
    if not text or "\n" in text or len(text) > 100 or _BOX_RE.search(text):
        return False  # a box that last_boxed rejected is a truncated response, not an answer
    return not _PROSE_RE.search(_LATEX_CMD_RE.sub(" ", text))


def extract_answer_with_rule(text: str) -> tuple[str | None, str]:
    r"""The final answer of a whole response and the rule that found it.

    Rules, in order: "boxed", "answer-is", "####", "bare" (the whole response is a one-line
    answer such as "\frac{3}{4}", which "last-number" would cut to "4"), "last-number";
    "none" (answer None) when nothing matched.

    >>> extract_answer_with_rule("so 2+2=4. The answer is 4.")
    ('4', 'answer-is')
    """
    boxed = last_boxed(text)
    if boxed:
        return boxed, "boxed"
    for m in reversed(list(_ANSWER_IS_RE.finditer(text))):
        answer = _clean_answer_tail(m.group(1))
        if answer:
            return answer, "answer-is"
    for m in reversed(list(_HASHES_RE.finditer(text))):
        answer = m.group(1).replace("**", "").strip().rstrip(".").strip()
        if answer:
            return answer, "####"
    stripped = text.strip().strip("$").strip()
    number = _last_number(text)
    if _is_bare_answer(stripped) and stripped != number:
        return stripped, "bare"
    if number is not None:
        return number, "last-number"
    return None, "none"


def extract_answer(text: str) -> str | None:
    """The final answer of a whole response, or None; see extract_answer_with_rule."""
    return extract_answer_with_rule(text)[0]


# ---------------------------------------------------------------------------------------------
# Normalisation and equality
# ---------------------------------------------------------------------------------------------

_UNIT_TEXT_RE = re.compile(r"(?P<body>.*\d.*?)\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\{?[23]\}?)?")
_ONLY_TEXT_RE = re.compile(r"\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}")
_WORD_UNIT_RE = re.compile(r"(?P<body>-?[\d.,/]+)\s+[A-Za-z]{2,}[A-Za-z ]*")
_THOUSANDS_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_RE = re.compile(r"-?\d+(?:\.\d+)?|-?\.\d+")


def normalize_answer(answer: str) -> str:
    r"""Normalise an extracted or gold answer for comparison (keeps spaces; LaTeX needs them).

    >>> normalize_answer("x = \\$1{,}000.")
    '1000'
    """
    s = answer.replace("\n", " ").strip()
    if _BOX_RE.search(s):
        s = last_boxed(s) or s
    s = s.replace("{,}", ",")  # "1{,}000": LaTeX's thousands separator
    s = re.sub(r"\\[!,;]", "", s)  # thin spaces: "1\,000", "\!"
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", s)  # \left( -> (, but not \rightarrow
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("°", "")
    s = s.strip().rstrip(".").strip()
    unit = _UNIT_TEXT_RE.fullmatch(s)  # "10\text{ inches}" -> "10"
    if unit:
        s = unit.group("body").strip()
    only_text = _ONLY_TEXT_RE.fullmatch(s)  # "\text{Evelyn}" -> "Evelyn"
    if only_text:
        s = only_text.group(1).strip()
    word_unit = _WORD_UNIT_RE.fullmatch(s)  # "18 dollars" -> "18"
    if word_unit:
        s = word_unit.group("body")
    if s.count("=") == 1:
        s = re.sub(r"^\\?[A-Za-z]\s*=\s*", "", s)  # "x = 5" -> "5"; not "x = 1, y = 2"
    if _THOUSANDS_RE.fullmatch(s):  # only a whole number like "1,000": "10, 4, 2" is a tuple
        s = s.replace(",", "")
    return re.sub(r"\s+", " ", s).strip()


def _fast_equal(gold: str, answer: str) -> bool:
    """Equal normalised strings (ignoring spaces) or equal decimal numbers; no sympy."""
    if gold.replace(" ", "") == answer.replace(" ", ""):
        return True
    if _DECIMAL_RE.fullmatch(gold) and _DECIMAL_RE.fullmatch(answer):
        return Fraction(gold) == Fraction(answer)  # exact: "18" == "18.00"
    return False


_MV_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())


def _math_verify(gold: str, answer: str) -> bool:
    """math-verify on two bare answers, each wrapped in $…$, with its signal timeouts off."""
    gold_parsed = parse(f"${gold}$", list(_MV_CONFIG), parsing_timeout=None)
    answer_parsed = parse(f"${answer}$", list(_MV_CONFIG), parsing_timeout=None)
    if not gold_parsed or not answer_parsed:
        return False
    return verify(gold_parsed, answer_parsed, timeout_seconds=None)


def _bounded(fn, args: tuple, timeout: float) -> tuple[bool, bool]:
    """Run fn(*args) in a daemon thread for at most `timeout` s: (result, timed_out).

    Works from any thread (no signals). A timed-out worker cannot be killed and finishes in
    the background; being a daemon it never keeps the interpreter alive."""
    box: dict[str, bool] = {}

    def work():
        try:
            box["result"] = bool(fn(*args))
        except Exception:  # math-verify raises on odd sympy objects; that is a "not equal"
            logger.debug("math-verify failed on %r", args, exc_info=True)
            box["result"] = False

    worker = threading.Thread(target=work, name="sclab-math-verify", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return False, True
    return box.get("result", False), False


def compare_answers(gold: str, answer: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[bool, str]:
    """Compare two bare answers: (equal, how) with how in "exact", "math-verify", "unequal", "timeout".

    A timeout is judged unequal and recorded in TIMEOUTS (and logged)."""
    g, a = normalize_answer(gold), normalize_answer(answer)
    if not g or not a:
        return False, "unequal"
    if _fast_equal(g, a):
        return True, "exact"
    equal, timed_out = _bounded(_math_verify, (g, a), timeout)
    if timed_out:
        TIMEOUTS.append((gold, answer))
        logger.warning("math-verify timed out after %.1f s on gold %r vs %r; judged unequal", timeout, gold, answer)
        return False, "timeout"
    return (True, "math-verify") if equal else (False, "unequal")


def math_equal(gold: str, prediction: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    r"""Whether `prediction` (a whole response or a bare answer) equals the bare answer `gold`.

    >>> math_equal("1,000", "#### 1000"), math_equal("\\$18", "18")
    (True, True)
    """
    answer = extract_answer(prediction)
    return answer is not None and compare_answers(gold, answer, timeout)[0]


def grade_math(gold: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> Grade:
    """Grade a whole response against a bare gold answer: correct, what was extracted and the rule."""
    answer, rule = extract_answer_with_rule(text)
    correct = answer is not None and compare_answers(gold, answer, timeout)[0]
    return Grade(correct=correct, extracted=answer, how=rule)


# ---------------------------------------------------------------------------------------------
# GSM8K as lm-eval-harness grades it (lm_eval/tasks/gsm8k/gsm8k.yaml and gsm8k-cot.yaml)
# ---------------------------------------------------------------------------------------------

_STRICT_RES = (re.compile(r"#### (\-?[0-9\.\,]+)"), re.compile(r"The answer is (\-?[0-9\.\,]+)"))
_FLEXIBLE_RE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def gsm8k_strict(text: str) -> str | None:
    """lm-eval's "strict-match": the FIRST `#### N` (else the first "The answer is N"), or None."""
    for regex in _STRICT_RES:
        found = regex.findall(text)
        if found:
            return found[0].strip()  # take_first, as lm-eval's regex filter with group_select=0
    return None


def gsm8k_flexible(text: str) -> str | None:
    """lm-eval's "flexible-extract": the LAST match of `(-?[$0-9.,]{2,})|(-?[0-9]+)`, or None."""
    found = _FLEXIBLE_RE.findall(text)
    if not found:
        return None
    return next(group for group in found[-1] if group).strip()  # group_select=-1


def gsm8k_match(gold: str, extracted: str | None) -> bool:
    """lm-eval's exact_match for GSM8K: drop ",", "$", a leading "… #### " and a trailing ".", ignore case."""
    if extracted is None:
        return False

    def clean(s: str) -> str:
        for pattern in (",", r"\$", r"(?s).*#### ", r"\.$"):  # gsm8k-cot.yaml regexes_to_ignore
            s = re.sub(pattern, "", s)
        return s.strip().lower()

    return clean(gold) == clean(extracted)
