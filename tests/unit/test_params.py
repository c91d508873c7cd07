"""Parameter validation: bad presets fail fast with a message naming key, file and valid values."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest

import sclab.runs.notebook_params.checks as checks_module
from sclab import cli
from sclab.runs.notebook_params import field_default
from sclab.runs.params import (NOTEBOOK_PARAMS, ParamError, QuickstartParams, load_params, notebook_parameters,
                               params_hash, project_root)

pytestmark = pytest.mark.unit

FAST_S = 5.0  # "before any model loads": validation must not import torch or touch a model


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A tmp project with notebooks/, params/00_quickstart/ and params/01_intrinsic/ (no presets yet)."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    for stem in ("00_quickstart", "01_intrinsic"):
        (root / "params" / stem).mkdir(parents=True)
    monkeypatch.setenv("SCLAB_ROOT", str(root))
    monkeypatch.delenv("SCLAB_OUTPUTS", raising=False)
    return root


def write_preset(root: Path, text: str, name: str = "quick", stem: str = "00_quickstart") -> Path:
    path = root / "params" / stem / f"{name}.yaml"
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
    # a count below its range: key, file, value and range (it used to start the run)
    ("negative count", "n_problems: -5\n", {}, ["'n_problems'", "params/00_quickstart/quick.yaml",
                                                 "got -5", "[1, ∞)"]),
    # -p batch_size 0 used to launch the notebook
    ("zero batch", "", {"batch_size": "0"}, ["-p batch_size", "quick.yaml", "got 0", "[1, ∞)"]),
    # -p temperature -1 used to fail inside the notebook after 4 s
    ("negative temperature", "", {"temperature": "-1"}, ["-p temperature", "got -1.0", "[0, ∞)"]),
    # YAML's .nan and .inf are floats: no range holds them
    ("nan", "temperature: .nan\n", {}, ["'temperature'", "quick.yaml", "finite", "nan"]),
    ("inf", "", {"temperature": ".inf"}, ["-p temperature", "finite", "inf"]),
    # numpy's default_rng refuses negative seeds
    ("negative seed", "seed: -1\n", {}, ["'seed'", "quick.yaml", "got -1", "[0, ∞)"]),
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
    ("empty file", "", {}, {"n_problems": 1000, "model": "toy:arith"}),
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
    # values only: whether this machine can run vllm is test_fail_safe.py's business
    (project / "ckpt" / "toy").mkdir(parents=True)
    write_preset(project, text)
    params = load_params("00_quickstart", "quick", overrides, requirements=False)
    for key, value in expected.items():
        got = getattr(params, key)
        assert got == value and type(got) is type(value), (case, key, got)


# List parameters (01_intrinsic's strategies: list[str], doubt_rates: list[float]):
# (case, yaml text, -p overrides, substrings the message must contain)
BAD_LISTS = [
    # the old comma string in a preset file: a YAML list is asked for, with both spellings shown
    ("comma string in yaml", "strategies: retry,are-you-sure\n", {},
     ["params/01_intrinsic/quick.yaml", "'strategies'", "expects list[str]", "[a, b]", "-p strategies a,b",
      "'retry,are-you-sure' (str)"]),
    # one item of the wrong type is named by its index
    ("bad item type", "doubt_rates: [0.0, high]\n", {},
     ["quick.yaml", "'doubt_rates'", "list[float]", "item 1 is 'high' (str), not float"]),
    # the same after -p, parsed from the comma string
    ("bad -p item", "", {"doubt_rates": "0.4,x"}, ["-p doubt_rates", "item 1 is 'x'"]),
    # every item of a list[float] must lie in the field's range
    ("item out of range", "doubt_rates: [0.4, 1.5]\n", {},
     ["quick.yaml", "key 'doubt_rates' item 1 must lie in [0, 1]", "got 1.5"]),
    # a strategy the registry does not have, and one that needs the gold label
    ("unknown strategy", "", {"strategies": "retry,retyr"}, ["-p strategies", "['retyr']", "huang-review"]),
    ("oracle strategy", "strategies: [retry, oracle-feedback]\n", {}, ["['oracle-feedback']", "are-you-sure"]),
    # nothing to compare
    ("no strategies", "", {"strategies": ""}, ["-p strategies", "no strategies given"]),
    # a scalar in a preset where a list is expected
    ("scalar for list", "doubt_rates: 0.4\n", {}, ["'doubt_rates'", "expects list[float]", "got 0.4 (float)"]),
]


@pytest.mark.parametrize("case,text,overrides,expected", BAD_LISTS, ids=[c[0] for c in BAD_LISTS])
def test_bad_list_params(project, case, text, overrides, expected):
    write_preset(project, text, stem="01_intrinsic")
    with pytest.raises(ParamError) as err:
        load_params("01_intrinsic", "quick", overrides)
    for s in expected:
        assert s in str(err.value), f"{case}: {s!r} not in {err.value}"


# (case, yaml text, -p overrides, expected strategies, expected doubt_rates)
GOOD_LISTS = [
    # a YAML list in the preset file, as the checkout's presets write them
    ("yaml lists", "strategies: [retry, are-you-sure]\ndoubt_rates: [0, 0.5]\n", {},
     ["retry", "are-you-sure"], [0.0, 0.5]),
    # -p with a comma string (spaces around items dropped) is parsed into the list type
    ("-p comma strings", "", {"strategies": "retry, cct-reask", "doubt_rates": "0.2,1e-3"},
     ["retry", "cct-reask"], [0.2, 0.001]),
    # -p with one item, and -p with a YAML flow list
    ("-p one item", "", {"strategies": "retry", "doubt_rates": "[0.8]"}, ["retry"], [0.8]),
    # "" is the empty list: the doubt-prior sweep is skipped (the GPU preset)
    ("-p empty list", "", {"doubt_rates": ""}, None, []),
]


@pytest.mark.parametrize("case,text,overrides,strategies,rates", GOOD_LISTS, ids=[c[0] for c in GOOD_LISTS])
def test_good_list_params(project, case, text, overrides, strategies, rates):
    write_preset(project, text, stem="01_intrinsic")
    p = load_params("01_intrinsic", "quick", overrides)
    assert p.strategies == (strategies or field_default(
        next(f for f in dataclasses.fields(NOTEBOOK_PARAMS["01_intrinsic"]) if f.name == "strategies")))
    assert p.doubt_rates == rates and all(type(r) is float for r in p.doubt_rates)
    # every instance gets its own copy of a list default
    assert NOTEBOOK_PARAMS["01_intrinsic"]().strategies is not NOTEBOOK_PARAMS["01_intrinsic"]().strategies


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


# ---------------------------------------------------------------------------------------------
# Ranges: every numeric field declares one, and every value outside it is refused


def _fields():
    for stem, cls in NOTEBOOK_PARAMS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            yield stem, f, hints[f.name]


def test_every_parameter_has_a_checked_type_and_range():
    # a field added without a range (or a str or list[str] without a choice check) fails here
    kinds = {"range": 0, "choice": 0, "bool": 0, "list": 0}
    for stem, f, tp in _fields():
        default = field_default(f)
        if tp in (int, float, list[float]):
            bounds = f.metadata.get("range")
            assert bounds is not None, f"{stem}: {f.name} has no range: use ranged(default, lo, hi)"
            for v in (default if tp == list[float] else [default]):
                assert v in bounds, f"{stem}: the default {f.name}={default} lies outside {bounds}"
            kinds["list" if tp == list[float] else "range"] += 1
        elif tp in (str, list[str]):
            check = f.metadata.get("check")
            assert check is not None, f"{stem}: {f.name} has no check: use checked(default, check)"
            assert check(default, project_root()) is None, f"{stem}: its check refuses the default {f.name}={default}"
            kinds["list" if tp == list[str] else "choice"] += 1
        else:
            assert tp is bool, f"{stem}: {f.name}: {tp}"  # a bool has no range: its type is its check
            kinds["bool"] += 1
    # numbers, choices, bools, lists: 00 has 6, 4, 0, 0; 01 has 13, 4, 1, 2 (strategies, doubt_rates);
    # 02 has 27, 4, 2, 0; 03 has 29, 5, 1, 1 (rl_betas); 04 has 17, 6, 1, 0 (inherited ones counted again)
    assert kinds == {"range": 94, "choice": 24, "bool": 5, "list": 3}


def _outside(bounds, tp):
    """The nearest value below the range (or at an open lower end), as typed after -p."""
    lo = bounds.lo if bounds.open_lo else bounds.lo - (1 if tp is int else 0.5)
    return tp(lo)


# a list[float] field's range holds for every item: `-p doubt_rates 0.4,-0.5` names item 1
OUT_OF_RANGE = [(stem, f.name, _outside(f.metadata["range"], float if tp == list[float] else tp),
                 str(f.metadata["range"]), tp == list[float])
                for stem, f, tp in _fields() if tp in (int, float, list[float])]


@pytest.mark.parametrize("stem,key,value,shown,is_list", OUT_OF_RANGE,
                         ids=[f"{c[0][:2]}-{c[1]}={c[2]}" for c in OUT_OF_RANGE])
def test_out_of_range_refused(stem, key, value, shown, is_list, monkeypatch):
    # the checkout's own presets; the message names the key, the file, the value and the range
    monkeypatch.delenv("SCLAB_ROOT", raising=False)
    t0 = time.monotonic()
    with pytest.raises(ParamError) as err:
        load_params(stem, "quick", {key: f"0.4,{value}" if is_list else str(value)})
    assert time.monotonic() - t0 < FAST_S
    msg = str(err.value)
    key_at = f"key {key!r} item 1" if is_list else f"key {key!r}"
    for s in [f"-p {key}", f"params/{stem}/quick.yaml", key_at, f"got {value!r}", shown]:
        assert s in msg, (s, msg)


def test_range_ends_are_allowed(monkeypatch):
    # the ends themselves are in range: a count of 1, temperature 0 (greedy), doubt_steps 0
    monkeypatch.delenv("SCLAB_ROOT", raising=False)
    p = load_params("00_quickstart", "quick", {"n_problems": "1", "temperature": "0", "seed": "0"})
    assert (p.n_problems, p.temperature, p.seed) == (1, 0.0, 0)
    assert load_params("01_intrinsic", "quick", {"doubt_steps": "0"}).doubt_steps == 0
    assert load_params("02_rl_correction", "quick", {"rl_generations": "2"}).rl_generations == 2
    # an odd parallel_k is in range but refused: k/2 two-attempt episodes against k samples
    with pytest.raises(ParamError, match=r"-p parallel_k.*'parallel_k': must be even.*got 3"):
        load_params("02_rl_correction", "quick", {"parallel_k": "3"})


# ---------------------------------------------------------------------------------------------
# Requirements of the chosen backend: refused where this machine cannot run it


def test_vllm_not_installed_refused(project, monkeypatch):
    # vllm missing (forced, so the test means the same on a GPU box): what to install, and the way out
    monkeypatch.setattr(checks_module, "installed", lambda name: name != "vllm")
    write_preset(project, "backend: vllm\n", name="gpu")
    t0 = time.monotonic()
    with pytest.raises(ParamError) as err:
        load_params("00_quickstart", "gpu")
    assert time.monotonic() - t0 < FAST_S
    assert str(err.value) == (
        "params/00_quickstart/gpu.yaml: key 'backend': backend 'vllm' needs the vllm package, which "
        "is not installed here; install it: pip install -e '.[vllm]' (vllm==0.31.0, built for torch "
        "2.13.0) on a machine with a CUDA GPU; on a CPU use backend hf")


def test_vllm_without_cuda_refused(project, monkeypatch):
    monkeypatch.setattr(checks_module, "installed", lambda name: True)
    write_preset(project, "")
    # CUDA_VISIBLE_DEVICES="" hides every device: found without importing torch
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ParamError, match=r"^-p backend \(over params/00_quickstart/quick.yaml\): key 'backend': "
                                         r"backend 'vllm' needs a CUDA device and none is visible "
                                         r"\(CUDA_VISIBLE_DEVICES='' hides every device\); pip install"):
        load_params("00_quickstart", "quick", {"backend": "vllm"})
    # torch sees no device
    monkeypatch.setattr(checks_module, "cuda_devices", lambda: (0, "torch.cuda.device_count() is 0"))
    with pytest.raises(ParamError, match=r"none is visible \(torch.cuda.device_count\(\) is 0\)"):
        load_params("00_quickstart", "quick", {"backend": "vllm"})
    # vllm and one device: accepted
    monkeypatch.setattr(checks_module, "cuda_devices", lambda: (1, "torch.cuda.device_count() is 1"))
    assert load_params("00_quickstart", "quick", {"backend": "vllm"}).backend == "vllm"


def test_vllm_really_missing_here(project):
    # the real probe on this machine (a CPU box without vllm: the case of the issue)
    if checks_module.installed("vllm"):
        pytest.skip("vllm is installed here")
    write_preset(project, "")
    with pytest.raises(ParamError, match="needs the vllm package, which is not installed here"):
        load_params("00_quickstart", "quick", {"backend": "vllm"})
    # requirements=False (what `sclab params` uses) shows the values anyway
    assert load_params("00_quickstart", "quick", {"backend": "vllm"}, requirements=False).backend == "vllm"


def test_cli_params_shows_a_preset_it_cannot_run(project, monkeypatch, capsys):
    monkeypatch.setattr(checks_module, "installed", lambda name: name != "vllm")
    write_preset(project, "backend: vllm\nn_problems: 7\n", name="gpu")
    assert cli.main(["params", "00_quickstart", "--preset", "gpu"]) == 0
    out = capsys.readouterr().out
    assert "# not runnable here: key 'backend': backend 'vllm' needs the vllm package" in out
    assert "backend: vllm\n" in out and "n_problems: 7\n" in out


def test_doctests():
    # the examples in the loader's and the dataclass modules' docstrings
    import doctest
    import importlib

    for name in ("sclab.runs.params", "sclab.runs.notebook_params", "sclab.runs.notebook_params.fields",
                 "sclab.runs.notebook_params.checks", "sclab.runs.notebook_params.episode",
                 "sclab.runs.notebook_params.quickstart", "sclab.runs.notebook_params.intrinsic",
                 "sclab.runs.notebook_params.rl"):
        result = doctest.testmod(importlib.import_module(name))
        assert result.failed == 0 and result.attempted > 0, name
