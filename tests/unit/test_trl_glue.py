"""The TRL glue: only named warnings are silenced (and TRL still words them so), the training
modules' layer direction (no toy world imported by them), and the doctests of the glue and SCoRe modules."""
import doctest
import inspect
import re
import subprocess
import sys
import warnings

import pytest

import sclab.train.score_grpo as R
import sclab.train.two_attempt as T
import sclab.train.trl_glue as G
from sclab.train.trl_glue import HARMLESS_WARNINGS, quiet

pytestmark = pytest.mark.unit
ROLLOUT_WARNING = ("You are using 'rollout_func', which is an experimental feature. This API may change or be removed "
                   "at any time without prior notice.")


def test_quiet_silences_the_named_warnings_and_nothing_else():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet():
            warnings.warn(ROLLOUT_WARNING, UserWarning)        # named: silenced
            warnings.warn(ROLLOUT_WARNING, FutureWarning)      # same words, another category: shown
            warnings.warn("a config note", UserWarning)        # anything else: shown
        warnings.warn(ROLLOUT_WARNING, UserWarning)            # outside the context: shown again
    assert [(type(w.message), str(w.message)) for w in caught] == [
        (FutureWarning, ROLLOUT_WARNING), (UserWarning, "a config note"), (UserWarning, ROLLOUT_WARNING)]


def test_each_silenced_warning_is_still_worded_so_by_trl():
    # a filter whose text TRL no longer emits would be dead weight; one whose wording drifted would stop filtering
    from trl.trainer import grpo_trainer

    source = inspect.getsource(grpo_trainer)
    for message, category, why in HARMLESS_WARNINGS:
        assert re.search(message, source), message
        assert issubclass(category, Warning) and why


def test_training_modules_do_not_import_the_toy_world():
    code = ("import sys, sclab.train, sclab.train.score, sclab.train.dpo; "
            "print(sorted(m for m in sys.modules if m.startswith('sclab.toy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_doctests():
    assert doctest.testmod(G).failed == 0
    assert doctest.testmod(T).failed == 0
    assert doctest.testmod(R).failed == 0
