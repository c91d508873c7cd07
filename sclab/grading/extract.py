r"""Final-answer extraction: which part of a whole response is its answer, and by which rule.

Rules, in order (each extraction records its rule in `Grade.how`, so an extraction failure
is counted, never silently scored; STYLE.md):

- "boxed": the last `\boxed{}` / `\fbox{}`; boxes joined only by ",", "and", `\quad` ... are
  one list ("\boxed{-2} and \boxed{1}" -> "-2, 1"), since MATH-style answers box each root;
  boxes joined by "or" keep it: MATH500 boxes alternative forms ("$\boxed{15\frac{39}{40}}$, or
  $\boxed{\frac{639}{40}}$"), a model may box two roots ("\boxed{1} or \boxed{-2}"); compare.py
  reads "A or B" as one value written twice when the gold is one value, as a list otherwise.
- "final-answer": Minerva's "The final answer is X" written AFTER the last box (arXiv 2206.14858;
  math-verify ranks it above boxes too), e.g. a boxed intermediate then the stated result.
- "answer-is", "####" (GSM8K's own format), "bare" (the whole response is a one-line answer).
- "math-verify": math-verify's own extraction without anchors: the last LaTeX span (`$…$`,
  `\[…\]`, `\(…\)`, several joined by "and"/","; matrices, relations, intervals, sets) or
  plain expression ("2/3", "1 000", "2,74") that parses. Its anchored "answer ... X" rules are
  not used: in a second attempt "the answer 12 was wrong, it is 15" they would pick 12.
- "last-number", then "none" (answer None).

    >>> extract_answer_with_rule("Therefore $x \\geq 5$ is the solution.")
    ('x \\geq 5', 'math-verify')
"""
from __future__ import annotations

import logging
import re

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
from math_verify.parser import extract_match, lazy_expr_regex, lazy_latex_regex

from .bounded import DEFAULT_TIMEOUT, TIMEOUTS, bounded

logger = logging.getLogger(__name__)

RULES = ("boxed", "final-answer", "answer-is", "####", "bare", "math-verify", "last-number", "none")

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
_ANSWER_IS_RE = re.compile(r"answer\s+is\b\s*:?\s*(.*)", re.IGNORECASE)  # "is:\n\n18" too
_FINAL_ANSWER_RE = re.compile(r"final\s+answer\s+is\b\s*:?\s*(.*)", re.IGNORECASE)
_HASHES_RE = re.compile(r"####[ \t]*(.*)")
# "1,000" is one number but "10, 4" is two: a comma joins digits only with no space after it
# (thousands "1,234" or a decimal comma "2,74"; normalize.py decides which)
_NUMBER_RE = re.compile(r"(?<![\w.,])-?(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+,\d+(?![\d,])|\d+)(?:\.\d+)?"
                        r"|(?<![\w.])-?\.\d+")
_PROSE_RE = re.compile(r"[A-Za-z]+\s+[A-Za-z]+")  # two words in a row: a sentence, not an answer
_LATEX_CMD_RE = re.compile(r"\\[A-Za-z]+(?:\{[^{}]*\})?")
# what may separate boxes that form one list answer: spaces, commas, "and", spacing commands,
# math delimiters, a short \text{...} ("\text{ and }", "\text{ for part (a) and }"), "y_2 =",
# a unit before "and"
_BOX_GAP_RE = re.compile(r"(?:\s|[,;&]|\band\b|\$|\\[()\[\]]|\\q?quad\b|\\[,;:! ]|\\text\{[^{}]{0,40}\}"
                         r"|[A-Za-z](?:_\{?\w+\}?)?\s*="  # "... and $y_2 = \boxed{…}$": the next item's name
                         r"|\b[A-Za-z]{1,12}\s+and\b|\bor\b)*")  # "\boxed{1} papers and \boxed{2} bins": a unit

# math-verify 0.9.0 ranks its regexes by priority; 300 is the group without any anchor word
_UNANCHORED = 300
_MV_LATEX = LatexExtractionConfig(boxed_match_priority=-1)  # boxes are found above
_MV_EXPR = ExprExtractionConfig()
_MV_PATTERNS = [(pattern, config) for config, patterns in ((_MV_LATEX, lazy_latex_regex(_MV_LATEX)),
                                                           (_MV_EXPR, lazy_expr_regex(_MV_EXPR)))
                for pattern, priority in patterns if priority == _UNANCHORED]


def boxes(text: str) -> list[tuple[int, int, str]]:
    r"""Every balanced `\boxed{…}` / `\fbox{…}` (and TeX's brace-less `\boxed 5`): (start, end, contents)."""
    found = []
    for m in _BOX_RE.finditer(text):
        rest = text[m.end():]
        if rest.startswith("{"):
            depth = 0
            for i, ch in enumerate(rest):
                depth += {"{": 1, "}": -1}.get(ch, 0)
                if depth == 0:
                    found.append((m.start(), m.end() + i + 1, rest[1:i].strip()))
                    break
            # an unbalanced box (a truncated response) is skipped: an earlier one may still count
        else:
            token = re.match(r"\s+([^\s$.,]+)", rest)  # "\boxed 5": TeX takes the next token
            if token:
                found.append((m.start(), m.end() + token.end(), token.group(1)))
    return [b for b in found if b[2]]


def last_boxed(text: str) -> str | None:
    r"""The contents of the last balanced `\boxed{…}` in `text`, or None."""
    found = boxes(text)
    return found[-1][2] if found else None


def boxed_answer(text: str) -> tuple[str, int, int] | None:
    r"""The boxed answer of `text`: (contents, start, end), or None without a box.

    The last box, joined with the boxes just before it when only a list separator stands
    between them ("\boxed{1}, \boxed{2}" -> "1, 2"). Boxes joined by "or" keep it
    ("\boxed{1} or \boxed{-2}" -> "1 or -2"): alternative forms of one value, or a list,
    as the gold's shape decides (compare.py).

    >>> boxed_answer("so $x = \\boxed{-2}$ and $x = \\boxed{1}$.")[0]
    '-2, 1'
    """
    found = boxes(text)
    if not found:
        return None
    # a box inside another box is part of it, not a second answer
    found = [b for b in found if not any(o[0] < b[0] and b[1] <= o[1] for o in found)]
    first, separators = len(found) - 1, []
    while first > 0:
        gap = text[found[first - 1][1]:found[first][0]]
        if not _BOX_GAP_RE.fullmatch(gap):
            break
        separators.insert(0, " or " if "or" in re.findall(r"[a-z]+", gap) else ", ")
        first -= 1
    # "x = \boxed{-2}": the left-hand side is dropped by joining the contents only
    joined = found[first][2] + "".join(sep + b[2] for sep, b in zip(separators, found[first + 1:]))
    return joined, found[first][0], found[-1][1]


_MATH_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_SPAN_GAP_RE = re.compile(r"\s*(?:,|,?\s*and)?\s*")


def _clean_answer_tail(tail: str) -> str:
    r"""What follows "answer is": the math span(s) there ("$12$ and $13$" -> "12, 13"), else
    the sentence up to its end."""
    tail = tail.replace("**", "").replace('\\"', '"').strip().strip('"').strip()
    spans, pos = [], 0
    while m := _MATH_SPAN_RE.match(tail, pos):
        spans.append(next(g for g in m.groups() if g is not None).strip())
        gap = _SPAN_GAP_RE.match(tail, m.end())
        pos = gap.end()
        if gap.group().strip() == "":  # only "and" / "," continue a list; "$5$ I hope" ends it
            break
    if spans:
        return ", ".join(spans)
    # "18. I hope it is correct." -> "18"; a decimal point is not followed by a space
    tail = re.split(r"\.\s", tail)[0]
    return tail.strip().rstrip(".").strip("$ ")


def _last_number(text: str) -> str | None:
    numbers = _NUMBER_RE.findall(text)
    return numbers[-1] if numbers else None


def _is_bare_answer(text: str) -> bool:
    r"""True for a one-line answer with no prose ("\frac{3}{4}", "p - q", "(3, 5)")."""
    if not text or "\n" in text or len(text) > 100 or _BOX_RE.search(text):
        return False  # a box that boxes() rejected is a truncated response, not an answer
    if re.search(r"(?<!\\)\$|\\[(\[]", text):
        return False  # "Answer $ \frac{1}{2} $ ...": prose around math spans, not one answer
    words = _LATEX_CMD_RE.sub(" ", text)
    # "Evelyn", "18 dollars" may be answers; "is 2/3. <|im_start|>user" is prose
    return not _PROSE_RE.search(words) and len(re.findall(r"[A-Za-z]{2,}", words)) <= 1


def _span_text(match: re.Match) -> str:
    """The source text math-verify matched, without its anchors; a percent sign kept ("$28$ %" -> "28%")."""
    groups = match.groupdict()
    latex = [match.group(name) for name in groups if "_latex" in name and groups[name]]
    if latex:
        out = ", ".join(s.strip() for s in latex)
    else:
        spans = [match.span(n) for n in groups if groups[n] and n.startswith(("integer", "decimal", "expr"))]
        out = match.string[min(s for s, _ in spans):max(e for _, e in spans)].strip().rstrip(".") if spans else ""
    percent = any(groups[n] for n in groups if n.endswith("percent"))
    return out + ("\\%" if percent and out else "")


def _math_verify_span(text: str) -> str | None:
    """math-verify's unanchored pick: of all its LaTeX / expression matches, the one ending
    last that parses (its own order: rightmost end first, then leftmost start)."""
    matches = [(m, config) for pattern, config in _MV_PATTERNS for m in pattern.finditer(text)]
    matches.sort(key=lambda mc: (mc[0].end(), -mc[0].start()), reverse=True)
    for match, config in matches:
        parsed, _ = extract_match(match, config)
        if parsed is not None:
            return _span_text(match) or None
        rhs = _span_text(match).split("=")[-1].strip().rstrip(".,;").strip()  # "… \end{pmatrix}.$"
        if config is _MV_LATEX and rhs and rhs != _span_text(match):
            # "$\mathbf{R} = \begin{pmatrix}…\end{pmatrix}$": sympy cannot equate a symbol and a
            # matrix, and math-verify only splits chains of 2+ "="; the value is the right-hand side
            if any(not isinstance(p, str) for p in parse(f"${rhs}$", [_MV_LATEX], parsing_timeout=None)):
                return rhs
    return None


def extract_answer_with_rule(text: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[str | None, str]:
    r"""The final answer of a whole response and the rule that found it (see the module docstring).

    >>> extract_answer_with_rule("so 2+2=4. The answer is 4.")
    ('4', 'answer-is')
    >>> extract_answer_with_rule("The sum is $\\begin{pmatrix} 1 & 2 \\end{pmatrix}$.")
    ('\\begin{pmatrix} 1 & 2 \\end{pmatrix}', 'math-verify')
    """
    boxed = boxed_answer(text)
    if boxed:
        for m in reversed(list(_FINAL_ANSWER_RE.finditer(text, boxed[2]))):
            answer = _clean_answer_tail(m.group(1))
            if re.search(r"\d", answer):  # "the final answer is correct" is not an answer
                return answer, "final-answer"
        return boxed[0], "boxed"
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
    span, timed_out = bounded(_math_verify_span, (text,), timeout)
    if timed_out:
        TIMEOUTS.append(("(extraction)", text[:200]))
        logger.warning("math-verify extraction timed out after %.1f s; falling back to the last number", timeout)
    if span and span != number:  # a plain number is still reported as the last number
        return span, "math-verify"
    if number is not None:
        return number, "last-number"
    return None, "none"


def gold_answer(gold: str) -> str:
    r"""The answer part of a gold: a bare gold as it is; a gold written as a solution (boxes,
    prose around math) goes through the same rules as a response.

    >>> gold_answer("1,-2"), gold_answer("so $n = \\boxed{1,-2}$.")
    ('1,-2', '1,-2')
    """
    stripped = gold.strip().strip("$").strip()
    if _is_bare_answer(stripped) or not stripped:
        return gold
    return extract_answer_with_rule(gold)[0] or gold


def extract_answer(text: str) -> str | None:
    """The final answer of a whole response, or None; see extract_answer_with_rule."""
    return extract_answer_with_rule(text)[0]
