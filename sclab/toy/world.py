"""The toy world's task: iterated programs mod p with step-by-step solutions and an exact grader.

A problem `x0 ; op1c1 op2c2 ; n ?` is solved line by line, `a opc = r ;`, applying op1 then
op2 n times mod p, with the final answer after `>`:

    7 ; +3 -5 ; 2 ?   ->   7 +3 = 10 ; 10 -5 = 5 ; 5 +3 = 8 ; 8 -5 = 3 ; > 3

An operation with its operand is one token (`+3`): each result is then a two-token lookup
(a, +3), which a small transformer learns reliably in minutes; with `+` and `3` as separate
tokens the three-token lookup sat on a loss plateau for a seed-dependent number of steps.

Pretraining documents (`sample_document`) carry slips at rate ε and follow-up turns whose
behaviour is set by the world's priors (see `sclab.toy.registry.ToyWorld`).

    >>> from sclab.toy.world import ArithTask
    >>> t = ArithTask(); p = t.problems(1)[0]; t.grade(p, p.meta["solution"]).correct
    True
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from sclab.tasks.base import Grade, Problem, Task
from sclab.toy.registry import ToyWorld

SPECIALS = ["<pad>", "<unk>", "<eos>", "<user>", "<assistant>"]
SYMBOLS = ["=", ";", "?", ">"]
WORDS = ["again", "confirm", "check", "wrong", "sure", "options", "same"]
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


def solve(prog: Program, p: int, rng: np.random.Generator | None = None, slip_rate: float = 0.0,
          force_slip_at: int | None = None, prefix: list[tuple[int, str, int, int]] | None = None
          ) -> list[tuple[int, str, int, int]]:
    """The solution lines (a, op, c, r). With `rng` and `slip_rate`, each line's result is wrong
    with that probability (uniform over the other p-1 values) and later lines follow it.
    `prefix` copies the given first lines verbatim; `force_slip_at` forces a slip on that line."""
    lines = list(prefix or [])
    a = lines[-1][3] if lines else prog.x0
    total = 2 * prog.n
    for i in range(len(lines), total):
        op, c = prog.ops[i % 2]
        r = apply(op, a, c, p)
        slip = i == force_slip_at or (rng is not None and slip_rate > 0 and rng.random() < slip_rate)
        if slip:
            r = (r + int(rng.integers(1, p))) % p
        lines.append((a, op, c, r))
        a = r
    return lines


def render(lines: list[tuple[int, str, int, int]] | None, final: int | None = None) -> str:
    """A solution's text; `final` overrides the answer after `>` (a multiple-choice guess).
    `lines=None` is a restatement of an answer without working: `same > final`."""
    if lines is None:
        return f"same > {final}"
    body = " ".join(f"{a} {op}{c} = {r} ;" for a, op, c, r in lines)
    return f"{body} > {lines[-1][3] if final is None else final}"


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
    """Parse a rendered solution back into lines; None if it is malformed."""
    body = text.split(">")[0]
    out = []
    for chunk in body.split(";"):
        tok = chunk.split()
        if not tok:
            continue
        if len(tok) != 4 or tok[2] != "=" or len(tok[1]) < 2:
            return None
        try:
            out.append((int(tok[0]), tok[1][0], int(tok[1][1:]), int(tok[3])))
        except ValueError:
            return None
    return out


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


def sample_document(rng: np.random.Generator, world: ToyWorld) -> list[tuple[str, str]]:
    """One pretraining conversation [(role, content), ...] from the world's mix (training split only)."""
    prog = sample_program(rng, world, "train")
    p = world.p
    answer = apply_program(prog, p)
    options = None
    question = prog.question()
    if rng.random() < world.mc_rate:
        wrong = [int(v) for v in rng.permutation([v for v in range(p) if v != answer])[:3]]
        options = [int(v) for v in rng.permutation([answer] + wrong)]
        question = mc_question(question, options)
    attempt = solve(prog, p, rng, world.slip_rate)
    final = mc_final(attempt, options, rng)
    msgs = [("user", question), ("assistant", render(attempt, final))]
    if rng.random() >= world.followup_rate:
        return msgs
    names = [n for n, _ in world.followup_weights]
    weights = np.array([w for _, w in world.followup_weights], dtype=float)
    copy_rates = dict(world.copy_rates)
    n_follow = int(rng.integers(1, world.max_attempts))
    for _ in range(n_follow):
        kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        if kind == "wrong" and final == answer:
            kind = "again"  # "wrong" is only ever said after a wrong attempt
        if kind == "wrong" or (kind in copy_rates and rng.random() >= copy_rates[kind]):
            # an independent attempt with the same slip rate
            attempt = solve(prog, p, rng, world.slip_rate)
            final = mc_final(attempt, options, rng)
            text = render(attempt, final)
        elif kind in copy_rates:
            text = render(None, final)  # keeps its answer: "same > r"
        else:  # "sure": the doubt prior - under pressure the answer may flip, without new working
            if rng.random() < world.doubt_change_rate:
                pool = [v for v in (options or range(p)) if v != final]
                final = int(pool[int(rng.integers(0, len(pool)))])
            text = render(None, final)
        msgs += [("user", followup(kind, question)), ("assistant", text)]
    return msgs


def apply_program(prog: Program, p: int) -> int:
    return solve(prog, p)[-1][3]


class ArithTask(Task):
    """Held-out iterated programs (never seen in pretraining), graded exactly.

    `n_min`/`n_max` set difficulty (2n solution lines; first-attempt accuracy at T=1 falls
    roughly as (1-ε)^(2n))."""

    name = "arith"
    dialect = "toy"

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
