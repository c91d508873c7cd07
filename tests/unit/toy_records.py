"""A hand-made records table on four one-step toy problems, shared by the training-set builder tests.

Each problem's samples are (turn-1, turn-2) codes: R the reference solution, Wk the reference with its final
answer moved by k (a distinct wrong attempt per k). Counted by hand:
- distinct right first attempts: 3 (P0, P2, P3);
- distinct wrong ones: 5, of which 4 have a right sample of their problem (P0: 2, P3: 2) and 1 has none (P1);
- revisions (wrong -> right): 4.
"""
import pandas as pd

from sclab.records import COLUMNS
from sclab.toy.world import ArithTask

TASK = ArithTask(n_min=1, n_max=1)  # n=1: two-line solutions keep the table readable
PROBS = TASK.problems(4, seed=0)
BY_ID = {p.id: p for p in PROBS}
R, W1, W2 = "R", "W1", "W2"
EPISODES = {
    0: [(R, R), (R, R), (W1, R), (W2, W2)],   # right twice (one distinct), two distinct wrongs; one fix
    1: [(W1, R), (W1, W2)],                   # never right at turn 1: its wrong attempt has no right partner
    2: [(R, W1), (R, R)],                     # always right at turn 1 (one distinct), one c->i at turn 2
    3: [(W1, R), (R, R), (W2, R)],            # one right, two distinct wrongs, two fixes
}


def right(p):
    return p.meta["solution"]


def wrong(p, k):
    """The reference solution with its final answer moved by k (mod 13): a distinct wrong attempt per k."""
    return right(p).rsplit(">", 1)[0] + f"> {(int(p.gold) + k) % 13}"


def text(p, code):
    return right(p) if code == R else wrong(p, int(code[1]))


def records(strategy="retry", feedback="", task=TASK):
    rows = []
    for i, eps in EPISODES.items():
        p = PROBS[i]
        for s, codes in enumerate(eps):
            for t, code in enumerate(codes, start=1):
                resp = text(p, code)
                g = task.grade(p, resp)
                rows.append(dict(problem_id=p.id, sample=s, turn=t, strategy=strategy, stop="intrinsic",
                                 response=resp, extracted=g.extracted, how=g.how, correct=g.correct, tokens=10,
                                 time=0.0, truncated=False, logprob=0.0, carried=False,
                                 feedback=feedback if t > 1 else ""))
    return pd.DataFrame(rows, columns=COLUMNS)
