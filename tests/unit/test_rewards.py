"""Task rewards as TRL reward functions: ids from a `datasets` column, string and conversational
completions, clear errors, and TRL's own reward plumbing (GRPOTrainer._calculate_rewards)."""
import doctest
import pickle
from types import SimpleNamespace as NS

import pytest

import sclab.tasks.base as base
from sclab.tasks import get_task

pytestmark = pytest.mark.unit
TASK = get_task("arith")
PROBS = TASK.problems(4, seed=1)


def right(p):
    return p.meta["solution"]


def wrong(p):
    """The reference solution with its final answer moved by one (mod 13): graded wrong."""
    return right(p).rsplit(">", 1)[0] + f"> {(int(p.gold) + 1) % 13}"


def test_doctests():
    assert doctest.testmod(base).failed == 0


@pytest.mark.parametrize("completion, expected", [
    (right, 1.0),                                                      # the reference solution
    (wrong, 0.0),                                                      # final answer off by one
    (lambda p: [{"role": "assistant", "content": right(p)}], 1.0),     # conversational, as TRL passes chats
    (lambda p: [{"role": "assistant", "content": wrong(p)}], 0.0),
    (lambda p: "", 0.0),                                               # nothing to extract: wrong, not an error
])
def test_reward_function_grades_by_id(completion, expected):
    f = TASK.reward_function(PROBS)
    comps = [completion(p) for p in PROBS]
    assert f(prompts=[None] * 4, completions=comps, problem_id=[p.id for p in PROBS]) == [expected] * 4
    # each value is the task's own verdict on that problem
    assert [float(TASK.grade(p, base.completion_text(c)).correct) for p, c in zip(PROBS, comps)] == [expected] * 4


def test_ids_pick_their_problem_not_their_position():
    f = TASK.reward_function(PROBS)
    ids = [PROBS[1].id, PROBS[0].id]
    assert f(None, [right(PROBS[1]), right(PROBS[1])], problem_id=ids) == [1.0, float(PROBS[0].gold == PROBS[1].gold)]


def test_names_and_pickling():
    from trl.trainer.utils import get_callable_name

    f = TASK.reward_function(PROBS)
    assert get_callable_name(f) == "arith_correct"                         # TRL logs rewards/arith_correct/mean
    assert get_callable_name(TASK.reward_function(PROBS, name="acc")) == "acc"
    g = pickle.loads(pickle.dumps(f))                                     # dataloader workers / multiprocessing
    assert g(None, [right(PROBS[0])], problem_id=[PROBS[0].id]) == [1.0] and g.__name__ == f.__name__


def test_datasets_column_of_string_ids():
    from datasets import Dataset

    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": TASK.prompt(p)}], "problem_id": p.id}
                            for p in PROBS])
    assert ds.features["problem_id"].dtype == "string"
    f = TASK.reward_function(PROBS)
    assert f(ds["prompt"], [right(p) for p in PROBS], problem_id=ds["problem_id"]) == [1.0] * 4


def test_through_trl_calculate_rewards():
    """TRL 1.16's own reward plumbing: the dataset rows' extra columns become keyword lists, and
    trainer_state / log_extra / log_metric / completion_ids come along too."""
    import torch
    from trl import GRPOTrainer
    from trl.trainer.utils import get_callable_name

    f = TASK.reward_function(PROBS)
    trainer = NS(accelerator=NS(device=torch.device("cpu"), is_main_process=True), args=NS(report_to=[]),
                 state=NS(global_step=0), reward_funcs=[f], reward_processing_classes=[None],
                 reward_func_names=[get_callable_name(f)], environments=None,
                 _log_completion_extra=lambda *a: None, _log_metric=lambda *a: None)
    inputs = [{"prompt": [{"role": "user", "content": TASK.prompt(p)}], "problem_id": p.id, "level": 1}
              for p in PROBS for _ in range(2)]                           # 2 generations per prompt
    prompts = [x["prompt"] for x in inputs]
    completions = [[{"role": "assistant", "content": (right if k % 2 == 0 else wrong)(PROBS[k // 2])}]
                   for k in range(len(inputs))]
    out = GRPOTrainer._calculate_rewards(trainer, inputs, prompts, completions, [[1, 2]] * len(inputs))
    assert out.shape == (8, 1) and out[:, 0].tolist() == [1.0, 0.0] * 4


def test_unknown_id_is_a_clear_key_error():
    f = TASK.reward_function(PROBS)
    with pytest.raises(KeyError, match="'nope' is not one of the 4 problems"):
        f(None, ["x"], problem_id=["nope"])


def test_missing_id_column():
    f = TASK.reward_function(PROBS)
    with pytest.raises(ValueError, match="problem_id.*got columns \\['level'\\]"):
        f(None, ["x"], level=[1])
    with pytest.raises(ValueError, match="reward_function"):               # Task.reward points the way
        TASK.reward(None, ["x"], problem_id=[PROBS[0].id])


@pytest.mark.parametrize("problems, match", [
    ([], "no problems"),
    ([PROBS[0], base.Problem(PROBS[0].id, "other question", "1")], "share the id"),
])
def test_bad_problem_sets(problems, match):
    with pytest.raises(ValueError, match=match):
        TASK.reward_function(problems)


def test_same_problem_twice_is_fine():
    assert len(TASK.reward_function([PROBS[0], PROBS[0]]).by_id) == 1


@pytest.mark.parametrize("completion", [None, 3, [{"role": "assistant"}], []])
def test_bad_completion_type(completion):
    with pytest.raises(TypeError, match="a completion must be a str or a list of messages"):
        TASK.reward_function(PROBS)(None, [completion], problem_id=[PROBS[0].id])
