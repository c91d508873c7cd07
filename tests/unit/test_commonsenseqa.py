"""CommonsenseQA: letter extraction rules and the local data file."""
import pytest

from sclab.tasks import get_task
from sclab.tasks.commonsenseqa import extract_choice

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text, expected", [
    ("The answer is (C).", ("C", "answer-is")),            # the format the prompt asks for
    ("answer: B", ("B", "answer-is")),                      # a colon form
    ("I think \\boxed{D}", ("D", "boxed")),                 # boxed letter
    ("Between (A) and (E), (E) fits.", ("E", "paren")),     # the last parenthesised letter
    ("It must be A", ("A", "last-letter")),                 # a bare capital letter
    ("none of these", (None, "none")),                      # an extraction failure, never scored right
])
def test_extract_choice(text, expected):
    assert extract_choice(text) == expected


def test_local_file_and_grading(data_dir):
    task = get_task("commonsenseqa")
    probs = task.problems()
    assert len(probs) == 1221
    assert all(p.gold in "ABCDE" for p in probs)
    p = probs[0]
    assert "(A)" in p.question and task.grade(p, f"The answer is ({p.gold}).").correct
    wrong = next(l for l in "ABCDE" if l != p.gold)
    assert not task.grade(p, f"The answer is ({wrong}).").correct
    assert task.prompt(p).endswith('where X is the letter of your choice.')
