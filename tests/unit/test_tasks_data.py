"""The data directory, JSONL reading, and the GSM8K / MATH500 tasks on the real benchmark files."""
import gzip
import json
import os

import pytest

import sclab.tasks.files as files
from sclab.grading import _bounded, _math_verify, compare_answers, gsm8k_strict
from sclab.tasks import get_task
from sclab.tasks.files import data_dir, read_jsonl
from sclab.tasks.gsm8k import GSM8K
from sclab.tasks.math500 import MATH500

pytestmark = pytest.mark.unit

# MATH500 reference solutions whose boxed answer cannot be matched to `answer`: unique_id -> reason.
# None today: every last \boxed{} equals its `answer` string, and math-verify parses every answer.
MATH500_UNMATCHED: dict[str, str] = {}


@pytest.fixture(scope="module")
def data():
    try:
        return data_dir()
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(f"benchmark data directory not found: {e}")


@pytest.fixture(scope="module")
def gsm8k(data):
    return GSM8K()


@pytest.fixture(scope="module")
def math500(data):
    return MATH500()


# --- data_dir and read_jsonl ---------------------------------------------------------------------

def test_missing_sclab_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    missing = tmp_path / "no-such-dir"
    monkeypatch.setenv("SCLAB_DATA_DIR", str(missing))
    with pytest.raises(ValueError, match="SCLAB_DATA_DIR") as err:
        data_dir()
    assert str(missing) in str(err.value)  # the message names the path it looked at
    with pytest.raises(ValueError, match="SCLAB_DATA_DIR"):  # a task does not silently go to the network
        GSM8K().problems()


def test_no_data_anywhere_says_to_set_sclab_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SCLAB_DATA_DIR", raising=False)
    monkeypatch.setattr(files, "REPO_ROOT", tmp_path / "repo")  # a repo with no shared/data beside it
    with pytest.raises(FileNotFoundError, match="set SCLAB_DATA_DIR"):
        data_dir()


def test_sclab_data_dir_relative_to_repo(monkeypatch, tmp_path, data):
    # CI sets SCLAB_DATA_DIR=../shared/data relative to the repo; it must work from any directory
    monkeypatch.setenv("SCLAB_DATA_DIR", os.path.relpath(data, files.REPO_ROOT))
    monkeypatch.chdir(tmp_path)
    assert data_dir() == data.resolve()


def test_data_dir_found_beside_repo(monkeypatch, data):
    monkeypatch.delenv("SCLAB_DATA_DIR", raising=False)
    beside = [files.REPO_ROOT / "shared" / "data", files.REPO_ROOT.parent / "shared" / "data"]
    if not any(p.is_dir() for p in beside):
        pytest.skip("no shared/data beside the repo; only SCLAB_DATA_DIR points at the data")
    assert (data_dir() / "gsm8k" / "test.jsonl").is_file()


def test_read_jsonl_plain_and_gzip(tmp_path):
    rows = [{"a": 1}, {"b": "x"}]
    text = "\n".join(json.dumps(r) for r in rows) + "\n\n"  # a trailing blank line is skipped
    (tmp_path / "r.jsonl").write_text(text)
    with gzip.open(tmp_path / "r.jsonl.gz", "wt") as f:
        f.write(text)
    assert read_jsonl(tmp_path / "r.jsonl") == rows
    assert read_jsonl(tmp_path / "r.jsonl.gz") == rows
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):  # the error names file and line
        read_jsonl(tmp_path / "bad.jsonl")


def test_read_shipped_gzip(data):
    assert len(read_jsonl(data / "humaneval" / "HumanEval.jsonl.gz")) == 164  # data/README.md


# --- GSM8K -------------------------------------------------------------------------------------

def test_gsm8k_problems(gsm8k):
    problems = gsm8k.problems()
    assert len(problems) == 1319  # the GSM8K test split
    first = problems[0]
    assert first.id == "gsm8k/test/0" and problems[-1].id == "gsm8k/test/1318"
    assert first.question.startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert first.gold == "18"
    assert first.meta["solution"].endswith("#### 18")
    by_id = {p.id: p for p in problems}
    assert by_id["gsm8k/test/146"].gold == "2125"  # the file says "#### 2,125": commas removed
    assert all("," not in p.gold for p in problems)  # "1,450,000" -> "1450000"
    assert gsm8k.source["test"].endswith("gsm8k/test.jsonl")


def test_gsm8k_sample_is_seeded(gsm8k):
    a, b, c = gsm8k.problems(5, seed=0), gsm8k.problems(5, seed=0), gsm8k.problems(5, seed=1)
    assert [p.id for p in a] == [p.id for p in b]  # same seed, same problems
    assert [p.id for p in a] != [p.id for p in c]  # another seed, other problems
    ids = [int(p.id.rsplit("/", 1)[1]) for p in a]
    assert ids == sorted(ids) and len(set(ids)) == 5  # file order, no repeats


def test_gsm8k_every_reference_solution_grades_correct(gsm8k):
    problems = gsm8k.problems()
    grades = [gsm8k.grade(p, p.meta["solution"]) for p in problems]
    assert [p.id for p, g in zip(problems, grades) if not g.correct] == []
    assert {g.how for g in grades} == {"####"}  # every solution ends "#### N"
    # lm-eval's strict extraction recovers the gold from every solution (after its comma removal)
    assert [p.id for p in problems if gsm8k_strict(p.meta["solution"]).replace(",", "") != p.gold] == []


def test_gsm8k_wrong_answers_grade_incorrect(gsm8k):
    problems = gsm8k.problems(50, seed=0)  # 50 keeps the math-verify calls under a second
    wrong = [p.id for p in problems if gsm8k.grade(p, f"#### {int(p.gold) + 1}").correct]
    assert wrong == []


def test_gsm8k_prompt_and_grade_all(gsm8k):
    p = gsm8k.problems()[0]  # gold 18
    prompt = gsm8k.prompt(p)
    assert prompt.startswith(p.question + "\n") and "#### <number>" in prompt
    response = "She sells 9 eggs at $2, so 9 * 2 = 18. The answer is 18.\nCheck: 18 / 2 = 9"
    assert gsm8k.grade_all(p, response) == {
        "strict": {"extracted": "18.", "correct": True},  # "The answer is 18." (lm-eval drops the period)
        "flexible": {"extracted": "9", "correct": False},  # the last number is the check's 9
        "math_verify": {"extracted": "18", "correct": True, "how": "answer-is"},
    }
    all_three = gsm8k.grade_all(p, p.meta["solution"])
    assert all(v["correct"] for v in all_three.values())


def test_gsm8k_explicit_path_and_split(tmp_path):
    path = tmp_path / "mini.jsonl"
    path.write_text(json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"}) + "\n")
    task = GSM8K(path=path)
    (p,) = task.problems()
    assert (p.id, p.gold, p.question) == ("gsm8k/test/0", "2", "1+1?")
    with pytest.raises(ValueError, match="split"):  # an explicit file is one split only
        task.problems(split="train")
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        GSM8K(path=tmp_path / "nope.jsonl").problems()


def test_gsm8k_hub_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("SCLAB_DATA_DIR", str(tmp_path))  # exists, but holds no gsm8k/
    calls = []

    def fake_hub(name, config, split):  # no network in unit tests
        calls.append((name, config, split))
        return [{"question": "2+2?", "answer": "#### 4"}]

    monkeypatch.setattr(files, "load_from_hub", fake_hub)
    task = GSM8K()
    assert [p.gold for p in task.problems()] == ["4"]
    assert calls == [("openai/gsm8k", "main", "test")] and task.source["test"] == "hub:openai/gsm8k"


def test_gsm8k_no_local_file_and_no_hub_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SCLAB_DATA_DIR", str(tmp_path))

    def offline(name, config, split):
        raise ConnectionError("no network")

    monkeypatch.setattr(files, "load_from_hub", offline)
    with pytest.raises(FileNotFoundError) as err:
        GSM8K().problems()
    message = str(err.value)
    assert str(tmp_path / "gsm8k" / "test.jsonl") in message  # the path tried
    assert "SCLAB_DATA_DIR" in message and "no network" in message  # what to set, and why the hub failed


def test_registry_builds_the_tasks(data):
    assert get_task("gsm8k").name == "gsm8k" and get_task("math500").name == "math500"


# --- MATH500 -----------------------------------------------------------------------------------

def test_math500_problems(math500):
    problems = math500.problems()
    assert len(problems) == 500
    first = problems[0]
    assert first.id == "math500/test/0"
    assert first.gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.meta["unique_id"] == "test/precalculus/807.json" and first.meta["level"] == 2
    assert math500.prompt(first).endswith("\\boxed{}.")
    with pytest.raises(ValueError, match="test"):
        math500.problems(split="train")


def test_math500_every_reference_solution_grades_correct(math500):
    problems = math500.problems()
    grades = {p.meta["unique_id"]: math500.grade(p, p.meta["solution"]) for p in problems}
    unmatched = {uid for uid, g in grades.items() if not g.correct}
    assert unmatched == set(MATH500_UNMATCHED)
    assert len(problems) - len(unmatched) >= 495
    assert {g.how for g in grades.values()} == {"boxed"}


def test_math500_math_verify_parses_every_answer(math500):
    # bypass the fast path: math-verify itself must accept each gold against itself, or an
    # equivalent answer written differently could never be matched
    failed = [p.meta["unique_id"] for p in math500.problems() if not _bounded(_math_verify, (p.gold, p.gold), 5.0)[0]]
    assert failed == []


def test_math500_neighbouring_answers_differ(math500):
    # a false-positive check on real golds: answer i vs answer i+1 must be unequal unless they
    # are the same value; the pairs below are the only equal neighbours in the file
    problems = math500.problems()
    equal = [(a.gold, b.gold) for a, b in zip(problems, problems[1:]) if compare_answers(a.gold, b.gold)[0]]
    assert equal == [("5", "x=5"), ("7", "7"), ("3", "3")]


def test_math500_wrong_boxed_answers_grade_incorrect(math500):
    problems = math500.problems(40, seed=0)  # 40 keeps the sympy work around a second
    wrong = [p.meta["unique_id"] for p in problems if math500.grade(p, f"\\boxed{{{p.gold} + 1}}").correct]
    assert wrong == []


def test_gsm8k_extraction_report_side_by_side(data_dir):
    import pandas as pd

    from sclab.tasks.gsm8k import GSM8K

    task = GSM8K()
    probs = task.problems(3, seed=1)
    g = [p.gold for p in probs]
    df = pd.DataFrame({"problem_id": [p.id for p in probs],
                       "response": [f"#### {g[0]}",                    # every rule right
                                    f"so {g[1]} it is, i.e. {g[1]}",   # no ####: strict fails, the others read the number
                                    "I do not know"]})                 # nothing to extract anywhere
    rep = task.extraction_report(df, probs)
    assert rep["strict"] == {"accuracy": 1 / 3, "extraction_failure_rate": 2 / 3}
    assert rep["flexible"]["accuracy"] == pytest.approx(2 / 3)
    assert rep["math_verify"]["accuracy"] == pytest.approx(2 / 3)
    assert rep["math_verify"]["extraction_failure_rate"] == pytest.approx(1 / 3)
