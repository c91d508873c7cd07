"""GSM8K graded as lm-eval-harness grades it (EleutherAI, lm_eval/tasks/gsm8k/gsm8k.yaml, gsm8k-cot.yaml).

"strict" reads `#### N` (or "The answer is N"), "flexible" the last number-like token; the
two can differ a lot on one run (0.20 vs 0.79 for one chat model; REFERENCES.md).

    >>> from sclab.grading.lm_eval import gsm8k_flexible, gsm8k_match, gsm8k_strict
    >>> gsm8k_strict("#### 5\\n#### 7"), gsm8k_flexible("#### 5\\n#### 7"), gsm8k_match("1450000", "1,450,000")
    ('5', '7', True)
"""
from __future__ import annotations

import re

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
