"""Notebook parameters: one dataclass per notebook, loaded from `params/<stem>/<preset>.yaml`.

A preset file holds exactly the keys of the notebook's `parameters` cell. `load_params`
refuses unknown keys, type changes, values outside a field's range, impossible choices (a
missing model path, an unknown task) and backends this machine cannot run (vllm without vllm
or a CUDA device) *before* any kernel starts, naming the key, the file and what is allowed — as
nanoGPT's configurator refuses unknown keys. This module is the generic loader: what each
field allows is declared with the field, in its notebook's module of `sclab.runs.notebook_params`.
Nothing here imports torch, except the CUDA probe for backend vllm where vllm is installed:
checks take milliseconds.

    >>> from sclab.runs.params import load_params, params_hash
    >>> p = load_params("00_quickstart", overrides={"n_problems": "20"}); (p.n_problems, len(params_hash(p)))
    (20, 16)
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

# the dataclasses live in their own modules (one per notebook); re-exported here, where callers
# have imported them from
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
# Types


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (list, tuple):
        return str(tp).replace("typing.", "")  # list[str], not "list"
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
        item = _item_type(tp)
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


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) in (list, tuple)


def _item_type(tp: Any) -> Any:
    args = typing.get_args(tp)
    return args[0] if args else Any


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _from_cli(raw: Any, tp: Any) -> Any:
    """A `-p KEY VALUE` string as the field's type would have it in YAML.

    A str field takes the string as typed (`-p strategy yes` is "yes", not True). A list field
    takes a YAML list (`[a, b]`) or a comma-separated string (`a,b`; "" is the empty list),
    each item parsed like a value of the item type."""
    if not isinstance(raw, str):
        return raw
    if tp is str:
        return raw
    if _is_list(tp) and not raw.lstrip().startswith("["):
        items = [s.strip() for s in raw.split(",") if s.strip()]
        return items if _item_type(tp) is str else [_from_cli(s, _item_type(tp)) for s in items]
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw  # the type check reports it


def _convert(key: str, value: Any, tp: Any, where: str) -> Any:
    """The value converted to the field's type, or a ParamError naming the key, where the value
    came from and what the type allows (for a list: which item is wrong)."""
    ok, converted = _coerce(value, tp)
    if ok:
        return converted
    if _is_list(tp):
        allowed = (f"expects {_type_name(tp)}: a YAML list such as `{key}: [a, b]` in a preset, "
                   f"or a comma-separated `-p {key} a,b`")
        if isinstance(value, (list, tuple)):
            item = _item_type(tp)
            i, bad = next((i, v) for i, v in enumerate(value) if not _coerce(v, item)[0])
            raise ParamError(f"{where}: key {key!r} {allowed}; item {i} is {bad!r} ({type(bad).__name__}), "
                             f"not {_type_name(item)}")
        raise ParamError(f"{where}: key {key!r} {allowed}; got {value!r} ({type(value).__name__})")
    raise ParamError(f"{where}: key {key!r} expects {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _check_value(key: str, value: Any, f: dataclasses.Field, where: str, root: Path) -> None:
    """The field's own checks (`sclab.runs.notebook_params.fields`): finite numbers, its range
    (every item's, for a list), its choice check."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    bounds = f.metadata.get("range")
    for i, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        at = f" item {i}" if isinstance(value, (list, tuple)) else ""
        if isinstance(v, float) and not math.isfinite(v):
            raise ParamError(f"{where}: key {key!r}{at} must be a finite number, got {v!r}")
        if bounds is not None and v not in bounds:
            why = f" ({bounds.why})" if bounds.why else ""
            raise ParamError(f"{where}: key {key!r}{at} must lie in {bounds}{why}, got {v!r}")
    check = f.metadata.get("check")
    problem = check(value, root) if check else None
    if problem:
        raise ParamError(f"{where}: key {key!r}: {problem}")


# ---------------------------------------------------------------------------------------------
# Loading


def params_class(stem: str) -> type:
    """The dataclass registered for a notebook stem."""
    if stem not in NOTEBOOK_PARAMS:
        raise ParamError(
            f"no parameter dataclass registered for notebook {stem!r} in sclab.runs.notebook_params."
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
    string as typed; a list field also takes `a,b`). Raises ParamError naming the key, the file
    and the valid values (for a number: the value and its range). `requirements=False` skips
    what only this machine decides (is vllm installed, is a CUDA device visible).
    """
    cls = params_class(stem)
    ftypes = _field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
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
        values[key] = _from_cli(raw, ftypes[key]) if key in ftypes else raw
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
        converted = _convert(key, value, ftypes[key], where)
        _check_value(key, converted, fields[key], where, root)
        resolved[key] = converted
    params = cls(**resolved)
    for key, problem in (unmet_requirements(params) if requirements else {}).items():
        raise ParamError(f"{origin.get(key, 'the defaults of ' + stem)}: key {key!r}: {problem}")
    return params


def unmet_requirements(params: Any) -> dict[str, str]:
    """{key: what this machine lacks to run its value} (empty: runnable here). Each field that
    has a requirement declares it (`checked(..., requires=...)`)."""
    if not dataclasses.is_dataclass(params):
        return {}
    return {f.name: problem for f in dataclasses.fields(params)
            if (need := f.metadata.get("requires"))
            and (problem := need(getattr(params, f.name), project_root()))}


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
