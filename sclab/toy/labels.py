"""Ground-truth error labels for any toy attempt: the world knows its own errors.

`label_attempt(problem, text, world)` reads an attempt's text and returns its error profile:
its form (a full solution, a revision, a kept answer, or malformed), where a revision split,
the index and the kind of its first wrong line, how many lines are wrong, and whether the
final answer is right anyway (a lucky hit). The kinds are those of `ToyWorld`:

- `slip`: a wrong result that no table entry explains (a random error; a second look can find it);
- `unsure`: the fixed wrong value of an unsure table entry (the model's belief is split);
- `misconception`: the fixed wrong value of a misconception entry (confidently wrong);
- `structure`: a line that does not follow the program (wrong input, operation or line count),
  or a final answer that is not the last line's result;
- `malformed`: text that does not parse as a solution.

No other self-correction benchmark can say, per sample, what kind of error was fixed or made;
this one can, because the errors are the world's own knobs.

    >>> from sclab.toy.world import ArithTask
    >>> t = ArithTask(); p = t.problems(1)[0]
    >>> label_attempt(p, p.meta["solution"], t.world)["error_kind"] is None
    True
"""
from __future__ import annotations

from sclab.tasks.base import Problem
from sclab.toy.registry import ToyWorld
from sclab.toy.world import ArithTask, apply, error_table, extract_final, parse_lines, parse_question

KINDS = ("slip", "unsure", "misconception", "structure", "malformed")
# the error kinds a first attempt's line can carry, in the order tables show them
LINE_KINDS = ("slip", "unsure", "misconception")
FORMS = ("solve", "revise", "keep", "malformed")
LABEL_COLUMNS = list(ArithTask.label_columns)


def form_of(text: str) -> str:
    """How an attempt is written: `keep` (`same > r`), `revise` (`revise ... redo ...`),
    `solve` (lines from the start) or `malformed` (none of these parses)."""
    tok = text.split()
    if tok[:1] == ["same"]:
        return "keep" if len(tok) == 3 and tok[1] == ">" and tok[2].isdigit() else "malformed"
    ok = bool(parse_lines(text)) and extract_final(text) is not None
    if tok[:1] == ["revise"]:
        # exactly one split mark, after at least one copied line (parse_lines checks where)
        return "revise" if ok and tok.count("redo") == 1 and tok.count("revise") == 1 else "malformed"
    if "revise" in tok or "redo" in tok:
        return "malformed"
    return "solve" if ok else "malformed"


def revision_split(text: str) -> int | None:
    """The number of lines a revision copied before `redo` (None if `text` is no revision)."""
    if form_of(text) != "revise":
        return None
    return len(parse_lines(text.split("redo", 1)[0] + " ;"))


def line_kind(a: int, op: str, c: int, r: int, world: ToyWorld) -> str | None:
    """The kind of one line's error given its own inputs (None if the line is right)."""
    if op not in world.ops or not 0 <= a < world.p or not 0 <= r < world.p:
        return "structure"
    if apply(op, a, c, world.p) == r:
        return None
    entry = error_table(world).get((a, op, c))
    return entry[0] if entry is not None and entry[1] == r else "slip"


def label_attempt(problem: Problem, text: str, world: ToyWorld | None = None) -> dict:
    """The error profile of one attempt at `problem` (columns `LABEL_COLUMNS`).

    A kept answer (`same > r`) has no lines of its own: its labels are empty but for `form`
    (the episode's earlier attempt carries them)."""
    world = world or ToyWorld()
    form = form_of(text)
    final = extract_final(text)
    right = final is not None and final == problem.gold
    out = {"form": form, "split": revision_split(text) if form == "revise" else None,
           "first_wrong": None, "error_kind": None, "n_wrong": 0, "lucky": False}
    if form == "keep":
        return out
    if form == "malformed":
        return {**out, "first_wrong": 0, "error_kind": "malformed", "n_wrong": 0}
    lines = parse_lines(text)
    prog = parse_question(problem.question)
    expect_a = prog.x0
    first, kind, n_wrong = None, None, 0
    for i, (a, op, c, r) in enumerate(lines):
        # a line must continue the chain and apply the program's next operation
        k = "structure" if (i >= 2 * prog.n or a != expect_a or (op, c) != prog.ops[i % 2]) else line_kind(a, op, c, r, world)
        if k is not None:
            n_wrong += 1
            if first is None:
                first, kind = i, k
        expect_a = r
    if first is None and len(lines) != 2 * prog.n:
        first, kind, n_wrong = len(lines), "structure", 1   # stopped early
    if first is None and "options" not in problem.question and final != str(lines[-1][3]):
        first, kind, n_wrong = len(lines), "structure", 1   # a final answer the lines do not give
    return {**out, "first_wrong": first, "error_kind": kind, "n_wrong": n_wrong,
            "lucky": bool(right and first is not None)}
