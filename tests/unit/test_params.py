"""Parameter validation: bad presets fail fast with a message naming key, file and valid values."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sclab.runs.params import (ParamError, QuickstartParams, load_params, notebook_parameters,
                               params_hash, project_root)

pytestmark = pytest.mark.unit

FAST_S = 5.0  # "before any model loads": validation must not import torch or touch a model


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A tmp project with notebooks/ and params/00_quickstart/ (no presets yet)."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "params" / "00_quickstart").mkdir(parents=True)
    monkeypatch.setenv("SCLAB_ROOT", str(root))
    monkeypatch.delenv("SCLAB_OUTPUTS", raising=False)
    return root


def write_preset(root: Path, text: str, name: str = "quick") -> Path:
    path = root / "params" / "00_quickstart" / f"{name}.yaml"
    path.write_text(text)
    return path


# (case, yaml text, -p overrides, substrings the message must contain)
BAD = [
    # a typo in a key: named, with its file and the valid keys (and the close match)
    ("unknown key", "n_problem: 20\n", {}, ["'n_problem'", "params/00_quickstart/quick.yaml",
                                            "valid keys", "n_problems", "temperature"]),
    # a string where an int is expected
    ("wrong type", "n_samples: four\n", {}, ["'n_samples'", "quick.yaml", "expects int", "'four'"]),
    # YAML `true` is a bool; a bool is never accepted as an int
    ("bool for int", "seed: true\n", {}, ["'seed'", "quick.yaml", "expects int", "True (bool)"]),
    # a float where an int is expected (no silent truncation)
    ("float for int", "batch_size: 8.5\n", {}, ["'batch_size'", "expects int", "8.5"]),
    # a path that does not exist: key, file and path
    ("missing model path", "model: /nonexistent/sclab-model\n", {},
     ["'model'", "quick.yaml", "/nonexistent/sclab-model", "does not exist"]),
    # a relative path is looked up under the project root, never the cwd
    ("missing relative path", "model: ./ckpt/missing\n", {}, ["'model'", "quick.yaml", "./ckpt/missing"]),
    # neither toy:, a path nor owner/name
    ("bad hub id", "model: not-a-hub-id\n", {}, ["'model'", "quick.yaml", "hub id owner/name"]),
    # an unknown toy model lists the toy models
    ("unknown toy model", "model: toy:nope\n", {}, ["'model'", "quick.yaml", "toy:arith"]),
    # backend has a fixed set of choices
    ("unknown backend", "backend: tgi\n", {}, ["'backend'", "quick.yaml", "hf, vllm"]),
    # task must be a key of sclab.tasks.TASKS
    ("unknown task", "task: gsm9k\n", {}, ["'task'", "quick.yaml", "arith", "gsm8k"]),
    # a bad -p override names "-p KEY", the type and the preset file it overrides
    ("bad -p type", "n_samples: 2\n", {"n_samples": "many"},
     ["-p n_samples", "quick.yaml", "expects int", "'many'"]),
    # a -p typo is refused like a yaml typo
    ("bad -p key", "", {"temprature": "0.5"}, ["-p temprature", "unknown key", "'temperature'"]),
    # a -p path is checked too
    ("bad -p path", "", {"model": "~/no/such/sclab/model"}, ["-p model", "~/no/such/sclab/model"]),
    # not a mapping at all
    ("not flat", "- a\n- b\n", {}, ["quick.yaml", "flat"]),
]


@pytest.mark.parametrize("case,text,overrides,expected", BAD, ids=[c[0] for c in BAD])
def test_bad_params_fail_fast(project, case, text, overrides, expected):
    write_preset(project, text)
    t0 = time.monotonic()
    with pytest.raises(ParamError) as err:
        load_params("00_quickstart", "quick", overrides)
    assert time.monotonic() - t0 < FAST_S
    for s in expected:
        assert s in str(err.value), f"{case}: {s!r} not in {err.value}"


def test_unknown_preset_lists_presets(project):
    # the message lists the presets that exist in that folder
    write_preset(project, "")
    write_preset(project, "", name="gpu-small")
    t0 = time.monotonic()
    with pytest.raises(ParamError) as err:
        load_params("00_quickstart", "quik")
    assert time.monotonic() - t0 < FAST_S
    assert "'quik'" in str(err.value) and "gpu-small, quick" in str(err.value)


def test_unregistered_notebook(project):
    # a notebook without a dataclass is refused, listing the registered ones
    with pytest.raises(ParamError, match="00_quickstart"):
        load_params("99_nope", "quick")


# (case, yaml text, -p overrides, expected field values)
GOOD = [
    # missing keys take the dataclass defaults (= the quick preset)
    ("empty file", "", {}, {"n_problems": 300, "model": "toy:arith"}),
    # an int where a float is expected is fine, and becomes a float
    ("int for float", "temperature: 1\n", {}, {"temperature": 1.0}),
    # PyYAML reads YAML 1.1, where 1e-3 is a string: accepted for a float field
    ("1e-3 float", "", {"temperature": "1e-3"}, {"temperature": 0.001}),
    # -p wins over the file; values parse as YAML
    ("override", "n_samples: 2\n", {"n_samples": "8"}, {"n_samples": 8}),
    # a str field takes the -p string as typed (`yes` is not turned into True)
    ("str override", "", {"strategy": "are-you-sure"}, {"strategy": "are-you-sure"}),  # a str stays a str
    # a hub id
    ("hub id", "model: Qwen/Qwen2.5-1.5B-Instruct\nbackend: vllm\n", {},
     {"model": "Qwen/Qwen2.5-1.5B-Instruct", "backend": "vllm"}),
    # a relative path that exists under the project root (created by the test)
    ("relative path", "model: ./ckpt/toy\n", {}, {"model": "./ckpt/toy"}),
]


@pytest.mark.parametrize("case,text,overrides,expected", GOOD, ids=[c[0] for c in GOOD])
def test_good_params(project, case, text, overrides, expected):
    (project / "ckpt" / "toy").mkdir(parents=True)
    write_preset(project, text)
    params = load_params("00_quickstart", "quick", overrides)
    for key, value in expected.items():
        got = getattr(params, key)
        assert got == value and type(got) is type(value), (case, key, got)


def test_params_hash_stable_and_order_independent(project):
    # the same content hashes the same whatever the key order or container
    a = {"seed": 0, "model": "toy:arith", "temperature": 1.0}
    b = {"temperature": 1.0, "model": "toy:arith", "seed": 0}
    assert params_hash(a) == params_hash(b) == "091dc58f1d68d8c2"  # sha256 of {"model":"toy:arith","seed":0,"temperature":1.0}
    # a dataclass and its dict agree; a changed value changes the hash
    p = QuickstartParams()
    assert params_hash(p) == params_hash(p.__dict__)
    assert params_hash(QuickstartParams(seed=1)) != params_hash(p)
    # `temperature: 1` and `temperature: 1.0` resolve to the same params
    write_preset(project, "temperature: 1\n")
    h_int = params_hash(load_params("00_quickstart", "quick"))
    write_preset(project, "temperature: 1.0\n")
    assert params_hash(load_params("00_quickstart", "quick")) == h_int == params_hash(QuickstartParams())


def _nb(path: Path, source: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell, nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, path)
    return path


def test_notebook_parameters(tmp_path):
    # flat literals with comments parse in order, with their Python types
    path = _nb(tmp_path / "a.ipynb", 'model = "toy:arith"  # name\nseed: int = 0\ntemperature = 1.0\nlayers = [1, 2]\n')
    assert notebook_parameters(path) == {"model": "toy:arith", "seed": 0, "temperature": 1.0, "layers": [1, 2]}
    assert list(notebook_parameters(path)) == ["model", "seed", "temperature", "layers"]
    # a computed value is refused: papermill would not recompute it after injection
    bad = _nb(tmp_path / "b.ipynb", "n = 2\nm = n * 3\n")
    with pytest.raises(ParamError, match="'m' is not a literal"):
        notebook_parameters(bad)


def test_project_root(tmp_path, monkeypatch):
    # SCLAB_ROOT wins; without it the checkout that holds this package (it has notebooks/)
    monkeypatch.setenv("SCLAB_ROOT", str(tmp_path))
    with pytest.raises(ParamError, match="no notebooks/"):
        project_root()
    (tmp_path / "notebooks").mkdir()
    assert project_root() == tmp_path.resolve()
    monkeypatch.delenv("SCLAB_ROOT")
    monkeypatch.chdir(tmp_path)  # the cwd does not matter
    assert project_root() == Path(__file__).resolve().parents[2]


def test_cli_bad_param_exits_2_without_traceback(project):
    # the same refusal through the console script: status 2, message on stderr, nothing run
    write_preset(project, "n_problem: 20\n")
    (project / "notebooks" / "00_quickstart.ipynb").write_text(json.dumps({"cells": [], "metadata": {},
                                                                           "nbformat": 4, "nbformat_minor": 5}))
    env = {**os.environ, "SCLAB_ROOT": str(project)}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "sclab.cli", "run", "00_quickstart", "--preset", "quick"],
                         capture_output=True, text=True, env=env, cwd=project.parent)
    assert time.monotonic() - t0 < FAST_S
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    for s in ["'n_problem'", "params/00_quickstart/quick.yaml", "valid keys", "n_problems"]:
        assert s in out.stderr
    assert not (project / "outputs").exists()
