"""Notebook parameters: one dataclass per notebook, loaded from `params/<stem>/<preset>.yaml`.

A preset file holds exactly the keys of the notebook's `parameters` cell. `load_params`
refuses unknown keys, type changes, values outside a field's range (declared with the field in
`sclab.runs.notebook_params`), impossible choices (a missing model path, an unknown task) and
backends this machine cannot run (vllm without vllm or a CUDA device) *before* any kernel
starts, naming the key, the file and what is allowed — as nanoGPT's configurator refuses
unknown keys. Nothing here imports torch, except the CUDA probe for backend vllm where vllm is
installed: checks take milliseconds.

    >>> from sclab.runs.params import load_params, params_hash
    >>> p = load_params("00_quickstart", overrides={"n_problems": "20"}); (p.n_problems, len(params_hash(p)))
    (20, 16)
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import importlib.util
import json
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

# the dataclasses live in their own module; re-exported here, where callers import them from
from .notebook_params import (NOTEBOOK_PARAMS, EpisodeParams, IntrinsicParams, QuickstartParams,  # noqa: F401
                              Range, RLParams, ranged)


class ParamError(ValueError):
    """A bad parameter, preset, notebook name or project layout: the user's input, not a bug.
    The CLI prints the message (no traceback) and exits with status 2."""


# ---------------------------------------------------------------------------------------------
# Where things are


def project_root() -> Path:
    """The directory that holds `notebooks/` and `params/`.

    SCLAB_ROOT if set; else the checkout this package was imported from (editable install);
    else the nearest ancestor of the current directory with both folders.
    """
    env = os.environ.get("SCLAB_ROOT")
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / "notebooks").is_dir():
            raise ParamError(f"SCLAB_ROOT={env} has no notebooks/ folder")
        return root
    checkout = Path(__file__).resolve().parents[2]  # sclab/runs/params.py -> the repo
    if (checkout / "notebooks").is_dir():
        return checkout
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):
        if (d / "notebooks").is_dir() and (d / "params").is_dir():
            return d
    raise ParamError(
        f"cannot find the sclab project (a folder with notebooks/ and params/) above {cwd}; "
        "set SCLAB_ROOT to it"
    )


def outputs_root(path: str | os.PathLike | None = None) -> Path:
    """Where runs are recorded: `path` (--outputs) or SCLAB_OUTPUTS, default `<root>/outputs`."""
    chosen = path or os.environ.get("SCLAB_OUTPUTS")
    return Path(chosen).expanduser().resolve() if chosen else project_root() / "outputs"


# ---------------------------------------------------------------------------------------------
# Choice checks, by field name: any notebook with a `model`, `backend` or `task` key gets them.
# Each returns an error message (without the key/file prefix) or None.

BACKENDS = ("hf", "vllm")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name as the HF hub spells it


def _check_backend(value: Any, root: Path) -> str | None:
    if value not in BACKENDS:
        return f"unknown backend {value!r}; valid: {', '.join(BACKENDS)}"
    return None


def _check_task(value: Any, root: Path) -> str | None:
    from sclab.tasks import TASKS  # light: task modules themselves load lazily

    if value not in TASKS:
        return f"unknown task {value!r}; valid: {', '.join(sorted(TASKS))}"
    return None


def _toy_models() -> dict | None:
    """TOY_MODELS without torch when possible; None if the toy world is not importable."""
    for module in ("sclab.toy.registry", "sclab.toy"):
        try:
            return __import__(module, fromlist=["TOY_MODELS"]).TOY_MODELS
        except (ImportError, AttributeError):
            continue
    return None


def _check_model(value: Any, root: Path) -> str | None:
    if not isinstance(value, str):
        return None  # the type check reports it
    if value.startswith("toy:"):
        toys = _toy_models()
        name = value[len("toy:"):]
        if toys is not None and name not in toys:
            return f"unknown toy model {value!r}; valid: {', '.join('toy:' + n for n in sorted(toys))}"
        return None
    if value.startswith(("/", "./", "../", "~")):
        # relative paths are relative to the project root (the notebooks run there too)
        path = Path(value).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.exists():
            return f"model path does not exist: {value} (looked at {path})"
        return None
    if not _HUB_ID.match(value):
        return (f"{value!r} is neither toy:<name>, a path (/, ./, ../, ~) "
                "nor a hub id owner/name")
    return None


def _check_strategy(value: Any, root: Path) -> str | None:
    from sclab.strategies import STRATEGIES  # torch-free

    if value not in STRATEGIES:
        return f"unknown strategy {value!r}; valid: {', '.join(sorted(STRATEGIES))}"
    return None


def _check_strategies(value: Any, root: Path) -> str | None:
    from sclab.strategies import STRATEGIES

    # oracle feedback needs oracle stopping, critic feedback a critic: no place in a list of intrinsic strategies
    intrinsic = sorted(n for n, st in STRATEGIES.items() if st.intrinsic)
    bad = [v for v in str(value).split(",") if v.strip() not in intrinsic]
    if bad or not str(value).strip():
        return f"unknown or non-intrinsic strategies {bad}; a comma-separated list of: {', '.join(intrinsic)}"
    return None


def _check_rates(value: Any, root: Path) -> str | None:
    try:
        rates = [float(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        return f"{value!r} is not a comma-separated list of numbers"
    if any(not 0 <= r <= 1 for r in rates):
        return f"rates must lie in [0, 1], got {rates}"
    return None


def _check_second_turn(value: Any, root: Path) -> str | None:
    from sclab.strategies import STRATEGIES

    # two-attempt RL injects one user message that depends on the problem alone (no gold label)
    ok = sorted(n for n, st in STRATEGIES.items() if len(st.chat) == 1 and len(st.toy) == 1 and st.static)
    if value not in ok:
        return f"{value!r} is not a one-message strategy without the gold label; valid: {', '.join(ok)}"
    return None


def _check_even(value: Any, root: Path) -> str | None:
    return None if value % 2 == 0 else f"must be even (k/2 two-attempt episodes against k samples), got {value}"


CHECKS = {"second_turn": _check_second_turn, "model": _check_model, "backend": _check_backend, "task": _check_task, "mc_task": _check_task,
          "strategy": _check_strategy, "strategies": _check_strategies, "doubt_rates": _check_rates,
          "parallel_k": _check_even}


# ---------------------------------------------------------------------------------------------
# Requirements: what this machine must have for a value to run (checked by `sclab run`, not by
# `sclab params`, which may show a GPU preset on a laptop). Each returns a message or None.

VLLM_INSTALL = ("pip install -e '.[vllm]' (vllm==0.31.0, built for torch 2.13.0) on a machine "
                "with a CUDA GPU; on a CPU use backend hf")


def _cuda_devices() -> tuple[int, str]:
    """(CUDA devices visible to this process, how that was found)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    # CUDA stops at the first invalid index: "" and "-1,..." hide every device
    if visible is not None and visible.split(",")[0].strip() in ("", "-1"):
        return 0, f"CUDA_VISIBLE_DEVICES={visible!r} hides every device"
    try:
        import torch  # only reached where vllm is installed: a GPU stack, seconds at most
    except ImportError:
        return 0, "torch is not installed"
    n = torch.cuda.device_count()  # NVML, without creating a CUDA context
    return n, f"torch.cuda.device_count() is {n}"


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None  # finds it without importing it (vllm: ~10 s)


def _need_backend(value: Any, root: Path) -> str | None:
    if value != "vllm":
        return None
    if not _installed("vllm"):
        return f"backend 'vllm' needs the vllm package, which is not installed here; install it: {VLLM_INSTALL}"
    n, how = _cuda_devices()
    if n == 0:
        return f"backend 'vllm' needs a CUDA device and none is visible ({how}); {VLLM_INSTALL}"
    return None


REQUIREMENTS = {"backend": _need_backend}


# ---------------------------------------------------------------------------------------------
# Types


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """(ok, value converted to tp). int is fine where float is expected; bool is never an int."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, out = _coerce(value, arg)
            if ok:
                return True, out
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is Any:
        return True, value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(tp)
        item = args[0] if args else Any
        out = []
        for v in value:
            ok, c = _coerce(v, item)
            if not ok:
                return False, value
            out.append(c)
        return True, (tuple(out) if origin is tuple else out)
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str):
            # PyYAML reads YAML 1.1, where `1e-3` (no dot) is a string: accept it as a float
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp), value


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


# ---------------------------------------------------------------------------------------------
# Loading


def params_class(stem: str) -> type:
    """The dataclass registered for a notebook stem."""
    if stem not in NOTEBOOK_PARAMS:
        raise ParamError(
            f"no parameter dataclass registered for notebook {stem!r} in sclab.runs.params."
            f"NOTEBOOK_PARAMS; registered: {', '.join(sorted(NOTEBOOK_PARAMS))}"
        )
    return NOTEBOOK_PARAMS[stem]


def presets(stem: str) -> list[str]:
    """The preset names that exist for a notebook (`params/<stem>/*.yaml`)."""
    folder = project_root() / "params" / stem
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def preset_path(stem: str, preset: str) -> Path:
    """`params/<stem>/<preset>.yaml`; a ParamError listing the presets if it does not exist."""
    path = project_root() / "params" / stem / f"{preset}.yaml"
    if not path.is_file():
        have = presets(stem)
        raise ParamError(
            f"unknown preset {preset!r} for {stem}: no {_show(path)}; presets in "
            f"{_show(path.parent)}/: {', '.join(have) if have else '(none)'}"
        )
    return path


def _show(path: Path) -> str:
    """A path relative to the project root when it lies inside it (shorter messages)."""
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


def load_params(stem: str, preset: str | None = None, overrides: dict[str, str] | None = None,
                requirements: bool = True):
    """Resolve a notebook's parameters: dataclass defaults <- preset yaml <- `-p KEY VALUE` overrides.

    `preset=None` uses the dataclass defaults (= the quick preset). Override values are
    strings as typed on the command line, parsed with yaml.safe_load (a str field takes the
    string as typed). Raises ParamError naming the key, the file and the valid values (for a
    number: the value and its range). `requirements=False` skips what only this machine
    decides (is vllm installed, is a CUDA device visible).
    """
    cls = params_class(stem)
    ftypes = _field_types(cls)
    ranges = {f.name: f.metadata["range"] for f in dataclasses.fields(cls) if "range" in f.metadata}
    root = project_root()
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}  # key -> where its value came from, for messages

    if preset is not None:
        path = preset_path(stem, preset)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ParamError(f"{_show(path)}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ParamError(f"{_show(path)}: expected flat `key: value` lines, got {type(data).__name__}")
        for key, value in data.items():
            values[key] = value
            origin[key] = _show(path)

    for key, raw in (overrides or {}).items():
        if key in ftypes and ftypes[key] is str:
            value = raw  # a str field takes the string as typed (`-p strategy yes` is "yes")
        else:
            try:
                value = yaml.safe_load(raw) if isinstance(raw, str) else raw
            except yaml.YAMLError:
                value = raw
        values[key] = value
        origin[key] = f"-p {key} (over {_show(path) if preset is not None else 'the defaults of ' + stem})"

    resolved: dict[str, Any] = {}
    for key, value in values.items():
        where = origin[key]
        if key not in ftypes:
            close = difflib.get_close_matches(str(key), ftypes, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParamError(
                f"{where}: unknown key {key!r} for {stem}{hint}; valid keys: {', '.join(ftypes)}"
            )
        ok, converted = _coerce(value, ftypes[key])
        if not ok:
            raise ParamError(
                f"{where}: key {key!r} expects {_type_name(ftypes[key])}, "
                f"got {value!r} ({type(value).__name__})"
            )
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ParamError(f"{where}: key {key!r} must be a finite number, got {converted!r}")
        bounds = ranges.get(key)
        if bounds is not None and converted not in bounds:
            why = f" ({bounds.why})" if bounds.why else ""
            raise ParamError(f"{where}: key {key!r} must lie in {bounds}{why}, got {converted!r}")
        check = CHECKS.get(key)
        problem = check(converted, root) if check else None
        if problem:
            raise ParamError(f"{where}: key {key!r}: {problem}")
        resolved[key] = converted
    params = cls(**resolved)
    for key, problem in (unmet_requirements(params) if requirements else {}).items():
        raise ParamError(f"{origin.get(key, 'the defaults of ' + stem)}: key {key!r}: {problem}")
    return params


def unmet_requirements(params: Any) -> dict[str, str]:
    """{key: what this machine lacks to run its value} (empty: runnable here)."""
    values = as_dict(params)
    return {key: problem for key, need in REQUIREMENTS.items()
            if key in values and (problem := need(values[key], project_root()))}


def as_dict(params: Any) -> dict[str, Any]:
    """Params (a dataclass or a dict) as a plain dict."""
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)


def params_hash(params: Any) -> str:
    """First 16 hex of sha256 over the canonical JSON (sorted keys) of the resolved params."""
    blob = json.dumps(as_dict(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def notebook_parameters(nb_path: str | os.PathLike) -> dict[str, Any]:
    """The flat literal assignments of the notebook cell tagged `parameters`, in order.

    Raises ParamError if there is no such cell or it holds anything but `name = literal`.
    """
    nb = json.loads(Path(nb_path).read_text())
    cells = [c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamError(f"{nb_path}: expected one cell tagged 'parameters', found {len(cells)}")
    source = cells[0]["source"]
    source = "".join(source) if isinstance(source, list) else source
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            name, value = node.target.id, node.value
        else:
            raise ParamError(f"{nb_path}: parameters cell line {node.lineno} is not `name = literal`")
        try:
            out[name] = ast.literal_eval(value)
        except ValueError:
            raise ParamError(
                f"{nb_path}: parameter {name!r} is not a literal (papermill does not recompute it)"
            ) from None
    return out
