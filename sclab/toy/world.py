"""The toy world's task: iterated programs mod p with step-by-step solutions and an exact grader.

A problem `x0 ; op1c1 op2c2 ; n ?` is solved line by line, `a opc = r ;`, applying op1 then
op2 n times mod p, with the final answer after `>`:

    7 ; +3 -5 ; 2 ?   ->   7 +3 = 10 ; 10 -5 = 5 ; 5 +3 = 8 ; 8 -5 = 3 ; > 3

An operation with its operand is one token (`+3`): each result is then a two-token lookup
(a, +3), which a small transformer learns reliably in minutes; with `+` and `3` as separate
tokens the three-token lookup sat on a loss plateau for a seed-dependent number of steps.

Pretraining documents (`sample_document`) carry three kinds of error - slips, unsure table
entries and misconceptions (`error_table`) - and follow-up turns that keep, revise or redo an
attempt, with rates set by the world's priors (see `sclab.toy.registry.ToyWorld`). A revision
copies the first k lines and marks where it starts anew with `redo` in place of that line's `;`
(so every line stays five tokens long, as in a first attempt):

    revise 7 +3 = 10 redo 10 -5 = 5 ; 5 +3 = 8 ; 8 -5 = 3 ; > 3

    >>> from sclab.toy.world import ArithTask
    >>> t = ArithTask(); p = t.problems(1)[0]; t.grade(p, p.meta["solution"]).correct
    True
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from sclab.tasks.base import Grade, Problem, Task
from sclab.toy.registry import ToyWorld

SPECIALS = ["<pad>", "<unk>", "<eos>", "<user>", "<assistant>"]
SYMBOLS = ["=", ";", "?", ">"]
WORDS = ["again", "confirm", "check", "wrong", "sure", "options", "same", "revise", "redo"]
MARKERS = ("revise", "redo")   # a revision's opening word and its split mark (not solution lines)
# A world-v2 build with `redo` as an extra token between lines (`... ; redo ...`) lost count of
# its lines in revisions (16% of them stopped early, ran long or lacked the mark) and revised
# 14 points below its first attempts: the mark broke the five-token rhythm of the lines.
# what the user says in each follow-up turn of the toy dialect; the question follows the words,
# as in the CCT paper's released code (the second turn repeats the question): without it a
# fresh second attempt had to fetch x0 from the far start of the conversation and began from
# a wrong number a third of the time (accuracy 0.41 against 0.67 for first attempts)
FOLLOWUPS = {"again": "again", "confirm": "confirm", "check": "check", "wrong": "wrong again", "sure": "sure ?"}


def followup(kind: str, question: str) -> str:
    return f"{FOLLOWUPS[kind]} {question}"


def vocabulary(world: ToyWorld) -> list[str]:
    ops = [f"{op}{c}" for op in world.ops for c in range(1, world.p)]
    return SPECIALS + [str(i) for i in range(world.p)] + ops + SYMBOLS + WORDS


@dataclass(frozen=True)
class Program:
    x0: int
    ops: tuple[tuple[str, int], ...]   # ((op1, c1), (op2, c2))
    n: int

    def question(self) -> str:
        body = " ".join(f"{op}{c}" for op, c in self.ops)
        return f"{self.x0} ; {body} ; {self.n} ?"


def apply(op: str, a: int, c: int, p: int) -> int:
    if op == "+":
        return (a + c) % p
    if op == "-":
        return (a - c) % p
    if op == "*":
        return (a * c) % p
    raise ValueError(f"unknown op {op!r}")


def parse_question(question: str) -> Program:
    """The Program of a question (options of a multiple-choice question are ignored)."""
    if question.startswith("options"):
        question = question.split(" ; ", 1)[1]
    x0, ops, n = question.split(" ?")[0].split(" ; ")
    o = ops.split()
    return Program(int(x0), tuple((t[0], int(t[1:])) for t in o), int(n))


@functools.lru_cache(maxsize=32)
def error_table(world: ToyWorld) -> dict[tuple[int, str, int], tuple[str, int]]:
    """The world's unsure facts and misconceptions: {(a, op, c): (kind, wrong value)}.

    A fixed, seeded choice of `n_unsure + n_misconceptions` distinct table entries, each with
    one wrong value (uniform over the p-1 others). Every other entry is always taught right.

    >>> from sclab.toy.registry import ToyWorld
    >>> t = error_table(ToyWorld()); sorted({k for k, _ in t.values()})
    ['misconception', 'unsure']
    """
    p = world.p
    entries = [(a, op, c) for op in world.ops for c in range(1, p) for a in range(p)]
    if world.n_unsure + world.n_misconceptions > len(entries):
        raise ValueError(f"ToyWorld: n_unsure + n_misconceptions must be <= {len(entries)} table entries")
    rng = np.random.default_rng([world.table_seed, 2024])
    pick = rng.permutation(len(entries))[: world.n_unsure + world.n_misconceptions]
    table = {}
    for j, i in enumerate(pick):
        a, op, c = entries[int(i)]
        wrong = (apply(op, a, c, p) + int(rng.integers(1, p))) % p
        table[(a, op, c)] = ("unsure" if j < world.n_unsure else "misconception", wrong)
    return table


def line_result(a: int, op: str, c: int, p: int, rng: np.random.Generator | None = None,
                slip_rate: float = 0.0, world: ToyWorld | None = None) -> int:
    """One line's result as pretraining text writes it: with probability `slip_rate` a slip
    (uniform over the p-1 wrong values); else, on an entry of `world`'s error table, the right
    value with probability `unsure_right` / `misconception_right` and its fixed wrong value
    otherwise; else the right value. Without `rng`, the true result."""
    r = apply(op, a, c, p)
    if rng is None:
        return r
    if slip_rate > 0 and rng.random() < slip_rate:
        return (r + int(rng.integers(1, p))) % p
    entry = error_table(world).get((a, op, c)) if world is not None else None
    if entry is not None:
        right = world.unsure_right if entry[0] == "unsure" else world.misconception_right
        if rng.random() >= right:
            return entry[1]
    return r


def solve(prog: Program, p: int, rng: np.random.Generator | None = None, slip_rate: float = 0.0,
          force_slip_at: int | None = None, prefix: list[tuple[int, str, int, int]] | None = None,
          world: ToyWorld | None = None) -> list[tuple[int, str, int, int]]:
    """The solution lines (a, op, c, r). With `rng`, each line's result is drawn by
    `line_result` (slips at `slip_rate`; with `world`, its unsure facts and misconceptions too)
    and later lines follow it. `prefix` copies the given first lines verbatim; `force_slip_at`
    forces a slip on that line."""
    lines = list(prefix or [])
    a = lines[-1][3] if lines else prog.x0
    total = 2 * prog.n
    for i in range(len(lines), total):
        op, c = prog.ops[i % 2]
        if i == force_slip_at:
            r = (apply(op, a, c, p) + int(rng.integers(1, p))) % p
        else:
            r = line_result(a, op, c, p, rng, slip_rate, world)
        lines.append((a, op, c, r))
        a = r
    return lines


def render(lines: list[tuple[int, str, int, int]] | None, final: int | None = None,
           split: int | None = None) -> str:
    """A solution's text; `final` overrides the answer after `>` (a multiple-choice guess).
    `lines=None` is a restatement of an answer without working: `same > final`. With `split`
    = k (1 <= k < len(lines)), a revision: `revise`, the k copied lines, `redo` in place of the
    k-th line's `;`, and the lines worked anew."""
    if lines is None:
        return f"same > {final}"
    if split is not None and not 1 <= split < len(lines):
        raise ValueError(f"render: a revision's split must be in 1..{len(lines) - 1}, got {split}")
    seps = ["redo" if split is not None and i == split - 1 else ";" for i in range(len(lines))]
    body = " ".join(f"{a} {op}{c} = {r} {sep}" for (a, op, c, r), sep in zip(lines, seps))
    end = f"> {lines[-1][3] if final is None else final}"
    return f"{'revise ' if split is not None else ''}{body} {end}"


def mc_final(lines, options: list[int] | None, rng: np.random.Generator, exclude: int | None = None) -> int:
    """The final answer of an attempt: its result, or with options a guess among them when the
    result is not an option (never `exclude`, the answer being changed, if avoidable)."""
    r = lines[-1][3]
    if options is None or (r in options and r != exclude):
        return r
    pool = [o for o in options if o != exclude] or list(options)
    return int(pool[int(rng.integers(0, len(pool)))])


def mc_question(question: str, options: list[int]) -> str:
    # options first: the solution then starts right after the question, as in open generation
    # (options after the question moved x0 further back and the model began from a wrong number)
    return f"options {' '.join(str(o) for o in options)} ; {question}"


def parse_lines(text: str) -> list[tuple[int, str, int, int]] | None:
    """Parse a rendered solution (or revision) back into lines; None if it is malformed.
    A revision's `revise` may only open the text and `redo` only end a line (where `;` would)."""
    tok = text.split(">")[0].split()
    if tok[:1] == ["revise"]:
        tok = tok[1:]
    out, line = [], []
    for t in tok:
        if t in (";", "redo"):
            if len(line) != 4 or line[2] != "=" or len(line[1]) < 2:
                return None
            try:
                out.append((int(line[0]), line[1][0], int(line[1][1:]), int(line[3])))
            except ValueError:
                return None
            line = []
        else:
            line.append(t)
    return out if not line else None


def is_test_program(prog: Program, world: ToyWorld) -> bool:
    """Hash partition: a fixed `test_fraction` of all programs never appears in pretraining."""
    h = int(hashlib.sha256(prog.question().encode()).hexdigest()[:8], 16)
    return (h % 10_000) < world.test_fraction * 10_000


def random_program(rng: np.random.Generator, world: ToyWorld, n_min: int, n_max: int) -> Program:
    x0 = int(rng.integers(0, world.p))
    ops = tuple((world.ops[int(rng.integers(0, len(world.ops)))], int(rng.integers(1, world.p))) for _ in range(2))
    return Program(x0, ops, int(rng.integers(n_min, n_max + 1)))


def sample_program(rng: np.random.Generator, world: ToyWorld, split: str, n_min: int | None = None,
                   n_max: int | None = None) -> Program:
    want_test = split == "test"
    while True:
        prog = random_program(rng, world, n_min or world.n_min, n_max or world.n_max)
        if is_test_program(prog, world) == want_test:
            return prog


def _behaviour(rng: np.random.Generator, world: ToyWorld, kind: str) -> str:
    """What a pretraining retry does after word `kind`: keep, revise or fresh."""
    if kind == "wrong":
        return "fresh"   # after oracle feedback: always a fresh look
    keep, revise, _ = world.behaviour_rates(kind)
    u = rng.random()
    return "keep" if u < keep else "revise" if u < keep + revise else "fresh"


def retry(rng: np.random.Generator, world: ToyWorld, prog: Program, attempt: list, final: int, word: str,
          options: list[int] | None = None) -> tuple[list, int, str, list[int]]:
    """What pretraining text writes after retry `word` (or "wrong") following a worked `attempt`
    whose answer is `final`: (the latest worked lines, the new final answer, the text, and the
    word positions in the text of the copied results: a revision's tokens that only copying
    predicts where attempt 1 was wrong).

    keep: `same > final`; fresh: every line anew; revise: `attempt`'s first k lines verbatim
    (k uniform on 1..L-1, independent of its errors; k = 0 is a fresh attempt), the rest anew. New lines have the
    first attempt's error rates, so no behaviour fixes anything."""
    how = _behaviour(rng, world, word)
    if how == "keep":
        return attempt, final, render(None, final), []
    if how == "revise" and len(attempt) < 2:
        how = "fresh"   # nothing to copy and redo: a one-line attempt is redone whole
    k = int(rng.integers(1, len(attempt))) if how == "revise" else 0
    # every copied result, right or wrong: weighting only the wrong ones taught a build that a
    # copied result *disagrees* with the arithmetic (its copies of right lines went wrong 35%
    # of the time and its first attempts lost 19 points), not that it copies
    copied = [1 + 5 * i + 3 for i in range(k)]
    attempt = solve(prog, world.p, rng, world.slip_rate, prefix=attempt[:k], world=world)
    final = mc_final(attempt, options, rng)
    return attempt, final, render(attempt, final, split=k if how == "revise" else None), copied


def sample_document(rng: np.random.Generator, world: ToyWorld, with_loss: bool = False):
    """One pretraining conversation [(role, content), ...] from the world's mix (training split only).

    With `with_loss`, returns (conversation, loss, conflicts): `loss[i]` says whether turn i
    carries loss (user turns never do; the first attempt of a conflict document,
    `ToyWorld.conflict_rate`, is context only) and `conflicts[i]` lists the word positions in
    turn i of a revision's copied results (`retry`), which the build may weight up: given the
    context they are certain, so a weight speeds learning without moving what is learned."""
    prog = sample_program(rng, world, "train")
    p = world.p
    answer = apply_program(prog, p)
    options = None
    question = prog.question()
    if rng.random() < world.mc_rate:
        wrong = [int(v) for v in rng.permutation([v for v in range(p) if v != answer])[:3]]
        options = [int(v) for v in rng.permutation([answer] + wrong)]
        question = mc_question(question, options)
    follow = rng.random() < world.followup_rate
    conflict = follow and rng.random() < world.conflict_rate
    attempt = solve(prog, p, rng, world.conflict_slip_rate if conflict else world.slip_rate, world=world)
    final = mc_final(attempt, options, rng)
    msgs = [("user", question), ("assistant", render(attempt, final))]
    loss = [False, not conflict]
    conflicts: list[list[int]] = [[], []]
    if follow:
        names = [n for n, _ in world.followup_weights]
        weights = np.array([w for _, w in world.followup_weights], dtype=float)
        n_follow = int(rng.integers(1, world.max_attempts))
        for _ in range(n_follow):
            kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            if kind == "wrong" and final == answer:
                kind = "again"  # "wrong" is only ever said after a wrong attempt
            copied_wrong: list[int] = []
            if kind == "sure":
                # the doubt prior - under pressure the answer may flip, without new working
                if rng.random() < world.doubt_change_rate:
                    pool = [v for v in (options or range(p)) if v != final]
                    final = int(pool[int(rng.integers(0, len(pool)))])
                text = render(None, final)
            else:
                attempt, final, text, copied_wrong = retry(rng, world, prog, attempt, final, kind, options)
            msgs += [("user", followup(kind, question)), ("assistant", text)]
            loss += [False, True]
            conflicts += [[], copied_wrong]
    return (msgs, loss, conflicts) if with_loss else msgs


def apply_program(prog: Program, p: int) -> int:
    return solve(prog, p)[-1][3]


class ArithTask(Task):
    """Held-out iterated programs (never seen in pretraining), graded exactly.

    `n_min`/`n_max` set difficulty (2n solution lines; first-attempt accuracy at T=1 falls
    roughly as (1-ε)^(2n))."""

    name = "arith"
    dialect = "toy"
    label_columns = ("form", "split", "first_wrong", "error_kind", "n_wrong", "lucky")   # sclab.toy.labels
    inherited_labels = ("first_wrong", "error_kind", "n_wrong", "lucky")

    def __init__(self, world: ToyWorld | None = None, n_min: int = 2, n_max: int = 6):
        self.world = world or ToyWorld()
        if not 1 <= n_min <= n_max:
            raise ValueError(f"ArithTask: need 1 <= n_min <= n_max, got n_min={n_min}, n_max={n_max}")
        self.n_min, self.n_max = n_min, n_max

    def problems(self, n: int | None = None, split: str = "test", seed: int = 0) -> list[Problem]:
        if split not in ("train", "test"):
            raise ValueError(f"ArithTask.problems: split must be 'train' or 'test', got {split!r}")
        n = 500 if n is None else n
        # seeded per split so test and train sets never share an RNG stream
        rng = np.random.default_rng([seed, 0 if split == "test" else 1, self.n_min, self.n_max])
        seen, out = set(), []
        while len(out) < n:
            prog = sample_program(rng, self.world, split, self.n_min, self.n_max)
            q = prog.question()
            if q in seen:
                continue
            seen.add(q)
            sol = solve(prog, self.world.p)
            out.append(Problem(id=f"arith/{split}/{len(out)}", question=q, gold=str(sol[-1][3]),
                               meta={"solution": render(sol), "n": prog.n}))
        return out

    def as_multiple_choice(self, problem: Problem, distractors: list[str], seed: int = 0) -> Problem:
        """The same problem posed as a choice among the gold answer and 3 distractors (e.g. the
        model's own wrong answers), in a seeded order."""
        d = [int(x) for x in dict.fromkeys(distractors) if str(x) != problem.gold][:3]
        rng = np.random.default_rng([seed, int(problem.gold), len(problem.question)])
        filler = [v for v in rng.permutation(self.world.p) if v != int(problem.gold) and v not in d]
        d += [int(v) for v in filler[:3 - len(d)]]
        options = [int(v) for v in rng.permutation([int(problem.gold)] + d)]
        return Problem(id=problem.id + "/mc", question=mc_question(problem.question, options), gold=problem.gold,
                       meta={**problem.meta, "options": options, "distractors": d})

    def label(self, problem: Problem, text: str) -> dict:
        """The attempt's error profile under this task's world (`sclab.toy.labels.label_attempt`)."""
        from sclab.toy.labels import label_attempt  # labels imports this module

        return label_attempt(problem, text, self.world)

    error_injector = "toy"   # a propagated arithmetic slip (`inject_toy_error`)

    def inject_error(self, text: str, rng: np.random.Generator) -> str | None:
        """`text` with one propagated arithmetic error under this world's modulus (`inject_toy_error`)."""
        return inject_toy_error(text, rng, p=self.world.p)

    def grade(self, problem: Problem, text: str) -> Grade:
        extracted = extract_final(text)
        if extracted is None:
            return Grade(False, None, "none")
        return Grade(extracted == problem.gold, extracted, "toy-final")


def extract_final(text: str) -> str | None:
    """The token after the last `>`, if it is a number; None otherwise (an extraction failure)."""
    if ">" not in text:
        return None
    tail = text.rsplit(">", 1)[1].split()
    if not tail or not tail[0].isdigit():
        return None
    return tail[0]


def first_wrong_line(problem: Problem, text: str, p: int = 13) -> int | None:
    """Index of the first solution line whose result is wrong given its own inputs (None if none
    or unparsable): where an attempt went off the rails."""
    lines = parse_lines(text)
    if not lines:
        return None
    for i, (a, op, c, r) in enumerate(lines):
        if op not in ("+", "-", "*") or apply(op, a, c, p) != r:
            return i
    return None


def inject_toy_error(text: str, rng: np.random.Generator, p: int = 13) -> str | None:
    """A toy-world solution with one injected arithmetic error, propagated: a line i chosen
    uniformly gets a wrong result (r + k mod p, k uniform in 1..p-1), and every later line is
    recomputed correctly from the wrong value, as a real slip propagates (see `solve`).

    So lines before i are unchanged, line i keeps its inputs and shows a wrong result (its
    `first_wrong_line`, if the attempt had no earlier slip), and the lines after it are
    consistent with it. With p prime and operands in 1..p-1 every step is a bijection, so a
    correct attempt always ends on a different (wrong) final answer. The text is re-rendered
    with `render` (the format the toy model writes). Returns None when the text has no
    parsable solution lines (e.g. `same > 5`) or an operator the world does not know."""
    lines = parse_lines(text)
    if not lines or any(op not in ("+", "-", "*") for _, op, _, _ in lines):
        return None
    i = int(rng.integers(len(lines)))
    a, op, c, r = lines[i]
    new = lines[:i] + [(a, op, c, (r + int(rng.integers(1, p))) % p)]
    for _, op2, c2, _ in lines[i + 1:]:
        prev = new[-1][3]
        new.append((prev, op2, c2, apply(op2, prev, c2, p)))
    return render(new)
