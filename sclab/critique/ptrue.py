"""P(True) (Kadavath et al., arXiv 2207.05221): the model judges a proposed answer in its own words.

Chat models get Kadavath's template, and P(True) is the mass on "(A)" normalised over "(A)" and
"(B)"; with brainstormed samples, the paper's "Here are some brainstormed ideas:" list comes
first. The toy dialect has no "(A) True / (B) False": its verification turn is `confirm
<question>` after the proposed attempt, and its yes and no words are `same` (keep the answer)
and `wrong`. The toy base never learned to judge (its keep prior after `confirm` is the same for
right and wrong attempts, a neutral base), so prompted P(True) on the toy replays that prior;
"trained P(True)" fine-tunes the verdict on the policy's own graded samples (labelled as such).

    >>> from sclab.toy.world import ArithTask
    >>> t = ArithTask(); p = t.problems(1)[0]
    >>> [m["role"] for m in ptrue_conversation(t, p, "3 +1 = 4 ; > 4", brainstorm=["> 5"])]
    ['user', 'assistant', 'user', 'assistant', 'user']
"""
from __future__ import annotations

from typing import Sequence

from sclab.critique.verifier import Row
from sclab.generate import encode_conversation
from sclab.tasks.base import Problem, Task
from sclab.toy.world import followup

KADAVATH = ("Question: {question}\nProposed Answer: {answer}\nIs the proposed answer:\n (A) True\n (B) False\n"
            "The proposed answer is:")
KADAVATH_BRAINSTORM = ("Question: {question}\nHere are some brainstormed ideas:\n{ideas}\nPossible Answer: {answer}\n"
                       "Is the possible answer:\n (A) True\n (B) False\nThe possible answer is:")
VERDICTS = {"toy": ("same", "wrong"), "chat": ("(A)", "(B)")}   # read at the first token where the options differ


def ptrue_conversation(task: Task, problem: Problem, answer: str, brainstorm: Sequence[str] = ()) -> list[dict]:
    """The conversation after which the verdict token is read."""
    if task.dialect == "toy":
        conv = [{"role": "user", "content": task.prompt(problem)}]
        for b in brainstorm:
            conv += [{"role": "assistant", "content": b}, {"role": "user", "content": followup("again", problem.question)}]
        return conv + [{"role": "assistant", "content": answer},
                       {"role": "user", "content": followup("confirm", problem.question)}]
    if brainstorm:
        ideas = "\n".join(f"{i + 1}. {b}" for i, b in enumerate(brainstorm))
        text = KADAVATH_BRAINSTORM.format(question=problem.question, ideas=ideas, answer=answer)
    else:
        text = KADAVATH.format(question=problem.question, answer=answer)
    return [{"role": "user", "content": text}]


def verdict_tokens(tokenizer, dialect: str) -> tuple[list[int], int, int]:
    """(shared prefix, yes id, no id): the options' tokens up to where they first differ, and the
    token of each there. Many BPE tokenizers split "(A)" into "(" + "A" + ")": the verdict is then
    read after the shared "(" (which the row appends), at "A" against "B"."""
    if dialect not in VERDICTS:
        raise ValueError(f"verdict_ids: no verdict words for dialect {dialect!r}; known: {', '.join(VERDICTS)}")
    a, b = (list(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in VERDICTS[dialect])
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    if k == min(len(a), len(b)):
        raise ValueError(f"verdict_ids: {VERDICTS[dialect]} have the same tokens for this tokenizer "
                         f"({a} and {b}): no token tells them apart")
    return a[:k], a[k], b[k]


def verdict_ids(tokenizer, dialect: str) -> tuple[int, int]:
    """The token ids of the yes and no verdicts (where the options' tokens first differ)."""
    _, yes, no = verdict_tokens(tokenizer, dialect)
    return yes, no


def ptrue_rows(tokenizer, task: Task, problems: Sequence[Problem], answers: Sequence[str],
               brainstorms: Sequence[Sequence[str]] | None = None, correct=None) -> list[Row]:
    """One row per (problem, answer): read where the verdict token would be generated; targets
    `correct` when given. The chat template's generation prompt and the options' shared prefix
    (`verdict_tokens`) end the row, so the verdict is the assistant's next token."""
    prefix, _, _ = verdict_tokens(tokenizer, task.dialect)
    rows = []
    for j, (p, a) in enumerate(zip(problems, answers)):
        conv = ptrue_conversation(task, p, a, brainstorms[j] if brainstorms is not None else ())
        ids = encode_conversation(tokenizer, conv) + prefix
        rows.append(Row(ids, [len(ids) - 1], [] if correct is None else [float(correct[j])]))
    return rows
