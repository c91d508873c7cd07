r"""Answer normalisation and answer shapes: what math-verify 0.9.0 lacks before it compares.

Numbers. A comma between digits with no space after it is a thousands separator when the
digits form a thousands grouping - a first group of 1-3 digits not starting with 0, then
groups of exactly 3 ("1,000", "12,345.5"); any other "d,d" ("1000,99", "2,74", "0,111",
"1234,567") is a decimal comma OR a two-item list ("-2,1": MATH's integer roots), and
compare.py reads it as a decimal only when the other answer is one number. "1 000" (space
groups) and "11,\! 111,\! 100" (LaTeX's `\!` after the comma) are thousands separators too;
"32, 349" (a plain space after the comma) is a list, as math-verify's own tests have it.

Shapes. A number is never equal to a list, a tuple, a set, an interval or a matrix, a set
`\{…\}` is never equal to a tuple `(…)`, and a tuple has its length, where math-verify says
"3" = "3, 3" (a set collapses duplicates), "5" = "\{5\}" = "[5,5]", "\{1,2\}" = "(2,1)".
A bare list "a, b" is neutral: as a set (any order, MATH's "separated by commas") or as a
tuple (in order) - see `comparable`.

    >>> normalize_answer("x = \\$1{,}000."), shape("\\{1, 2\\}")
    ('1000', Shape(kind='set', n=2))
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .extract import boxed_answer

_UNIT_TEXT_RE = re.compile(r"(?P<body>.*\d.*?)\s*\\(?:text|textnormal|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\{?[23]\}?)?")
_ONLY_TEXT_RE = re.compile(r"\\(?:text|textbf|textnormal|mbox|mathrm)\{([^{}]*)\}")
_WORD_UNIT_RE = re.compile(r"(?P<body>-?[\d.,/]+)\s+[A-Za-z]{2,}[A-Za-z ]*")
_PERCENT_WORD_RE = re.compile(r"(\d)\s*(?:\\?%|\b(?:percent(?:age)?|pct)\b)")
_THOUSANDS_RE = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_SPACE_THOUSANDS_RE = re.compile(r"-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?")
DECIMAL_COMMA_RE = re.compile(r"-?\d+,\d+")  # left after thousands are removed: "1000,99", "-2,1"
_AND_LIST_RE = re.compile(r"(?<=[\d)\]}])\s*,?\s*(?:\\text\{\s*(?:and|or)\s*\}|(?:\band\b|\bor\b))\s*(?=[-\w(\[\\{])")
_NAMES_RE = re.compile(r"\s*(?:\\?[A-Za-z]|\(\s*[A-Za-z](?:\s*,\s*[A-Za-z])*\s*\))\s*")  # "x", "(x, y)"
_RELATION_RE = re.compile(r"<|>|\\(?:le|ge|leq|geq|lt|gt|neq|ne|leqslant|geqslant)(?![A-Za-z])|!=|≤|≥|≠")
_OPEN, _CLOSE = "([{", ")]}"


def normalize_answer(answer: str) -> str:
    r"""Normalise an extracted or gold answer for comparison (keeps spaces; LaTeX needs them).

    >>> normalize_answer("11,\\! 111,\\! 100"), normalize_answer("\\boxed{1} and \\boxed{-2}")
    ('11111100', '1, -2')
    """
    s = answer.replace("\n", " ").strip()
    boxed = boxed_answer(s)  # a gold written as a solution; an answer is bare already
    if boxed:
        s = boxed[0]
    if "&" not in s and "\\begin" not in s:  # "\\frac" written with escaped backslashes; a matrix's "\\" is a row end
        s = re.sub(r"(?<!\\)\\\\(?=[A-Za-z{}])", r"\\", s)
    s = s.replace("{,}", ",")  # "1{,}000": LaTeX's thousands separator
    s = re.sub(r"(?<=\d),\s*\\!\s*(?=\d{3}(?!\d))", ",", s)  # "11,\! 111": \! marks a thousands comma
    s = re.sub(r"(?<!\\)\\[!,;:](?![A-Za-z])", "", s)  # thin spaces: "1\,000", "\!"; "\\" is a row end
    s = re.sub(r"(?<!\\)\\ ", " ", s)  # a control space "\ "
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\(?:left|right|big|Big|bigl|bigr|Bigl|Bigr)(?![A-Za-z])", "", s)  # \left( -> (, not \rightarrow
    s = re.sub(r"\\langle\b", "(", re.sub(r"\\rangle\b", ")", s))  # math-verify reads <1,2> as 1.2
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("°", "")
    s = re.sub(r"\\q?quad\b", " ", s).strip().rstrip(".").strip()
    while s.startswith("{") and _enclosed(s):  # "{1,3}": LaTeX grouping braces, not a set
        s = s[1:-1].strip()
    unit = _UNIT_TEXT_RE.fullmatch(s)  # "10\text{ inches}" -> "10"
    if unit:
        s = unit.group("body").strip()
    only_text = _ONLY_TEXT_RE.fullmatch(s)  # "\text{Evelyn}" -> "Evelyn"
    if only_text:
        s = only_text.group(1).strip()
    s = _PERCENT_WORD_RE.sub(r"\1\\%", s)  # "28 percent" -> "28\%", before "18 dollars" -> "18"
    word_unit = _WORD_UNIT_RE.fullmatch(s)
    if word_unit:
        s = word_unit.group("body")
    s = _AND_LIST_RE.sub(", ", s)  # "1, 2, and 3" / "1 \text{ and } 2" / "(11,7)or(7,11)" -> a list
    if s.count("=") == 1:
        lhs, rhs = s.split("=")
        # "x = 5", "(x, y) = (5, 8)" -> the value, but not "y = 2x + 1": that equation stays one
        if _NAMES_RE.fullmatch(lhs) and not re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", rhs)):
            s = rhs
    s = s.strip()
    if _THOUSANDS_RE.fullmatch(s):  # only a whole number like "1,000": "10, 4, 2" is a list
        s = s.replace(",", "")
    elif _SPACE_THOUSANDS_RE.fullmatch(s):  # "1 000"
        s = s.replace(" ", "")
    return re.sub(r"\s+", " ", s).strip()


def split_top(s: str, sep: str = ",;") -> list[str]:
    """`s` split at any of `sep` outside brackets: "(1, 2), 3" -> ["(1, 2)", "3"]; "-12;-11" is a list too."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch in sep and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _enclosed(s: str) -> bool:
    """True when the first character's bracket closes at the last character: "(1, 2)", not "(1)(2)"."""
    depth = 0
    for i, ch in enumerate(s):
        depth += 1 if ch in _OPEN else -1 if ch in _CLOSE else 0
        if depth == 0:
            return i == len(s) - 1
    return False


def alternatives(s: str) -> list[str]:
    r"""`s` split at "or" outside brackets: "1 or -2" -> ["1", "-2"]; "(11,7)or(7,11)" too."""
    s = re.sub(r"\\text\{\s*or\s*\}", " or ", s)
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        depth += 1 if ch in _OPEN else -1 if ch in _CLOSE else 0
        if depth == 0 and s.startswith("or", i) and not s[i - 1:i].isalpha() and not s[i + 2:i + 3].isalpha():
            parts.append(s[start:i])
            start = i + 2
    parts.append(s[start:])
    return [p.strip().strip(",").strip() for p in parts if p.strip().strip(",").strip()]


class Shape(NamedTuple):
    """The type of an answer: kind in scalar, relation, list, tuple, set, interval, matrix; n items."""

    kind: str
    n: int = 1


def _items(parts: list[str]) -> int:
    return sum(2 if re.search(r"\\(?:pm|mp)\b", p) else 1 for p in parts)  # "1 \pm \sqrt{5}" is two


def shape(s: str) -> Shape:
    r"""The shape of a normalised answer: "5" scalar, "x \geq 5" relation, "1, -2" list of 2,
    "(1, 2)" tuple, "\{1, 2\}" set, "[0, 1)" interval, "\begin{pmatrix}…" matrix."""
    s = re.sub(r"^\s*\\?[A-Za-z]+\s*\\in\b\s*", "", s.strip())  # "x \in [-2, 7]", "\lambda \in (3, 4]": the interval
    if re.search(r"\\begin\{[a-zA-Z]*(?:matrix|array)\}", s):
        return Shape("matrix")
    parts = split_top(s)
    if len(parts) > 1:
        return Shape("list", _items(parts))
    if s.count("=") >= 1 and not _RELATION_RE.search(s):
        lhs, rhs = s.split("=")[0], s.split("=")[-1]
        # an assignment "x = 5", "(p, q) = (3, 2)" has the shape of its value; "2x + 4y = 3" is a relation
        if re.fullmatch(r"\s*(?:\\?[A-Za-z](?:_\{?\w+\}?)?|\([A-Za-z, ]+\))\s*", lhs) and rhs.strip():
            return shape(rhs)
        return Shape("relation")
    if _RELATION_RE.search(s):
        return Shape("relation")
    if re.fullmatch(r"\\(?:emptyset|varnothing)|\\\{\s*\\\}", s):
        return Shape("set", 0)
    if s.startswith("\\{") and s.endswith("\\}") and _enclosed(s[1:]):
        return Shape("set", _items(split_top(s[2:-2])))
    if re.search(r"\\(?:cup|cap)\b", s) or ("\\infty" in s and s[:1] in "([" and s[-1:] in ")]"):
        return Shape("interval", 2)
    if s[:1] in "([" and s[-1:] in ")]" and _enclosed(s):
        inner = split_top(s[1:-1])
        if len(inner) > 1:
            mixed_or_square = s[0] == "[" or s[-1] == "]"
            return Shape("interval" if mixed_or_square and len(inner) == 2 else "tuple", _items(inner))
    if re.search(r"\\(?:pm|mp)\b", s):
        return Shape("list", 2)
    return Shape("scalar")


# kinds that may be equal to each other (besides a kind and itself); math-verify decides then
_COMPATIBLE = {frozenset(p) for p in (("list", "set"), ("list", "tuple"), ("tuple", "interval"),
                                      ("relation", "scalar"), ("relation", "interval"), ("relation", "set"),
                                      ("relation", "list"), ("relation", "tuple"))}


def comparable(gold: Shape, answer: Shape) -> bool:
    """False when the two answers are of different types, so they can never be equal.

    >>> comparable(shape("3"), shape("3, 3")), comparable(shape("1, -2"), shape("-2, 1"))
    (False, True)
    """
    if gold.kind != answer.kind and frozenset((gold.kind, answer.kind)) not in _COMPATIBLE:
        return False
    if "tuple" in (gold.kind, answer.kind) and {gold.kind, answer.kind} <= {"tuple", "list"}:
        return gold.n == answer.n  # a tuple has its length; sets and lists may repeat an item
    if {gold.kind, answer.kind} == {"tuple", "interval"}:
        return gold.n == answer.n == 2
    return True
