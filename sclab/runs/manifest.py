"""A run's manifest: what it ran (code, params, weights, machine) and how it ended.

    >>> from sclab.runs.manifest import read_manifest
    >>> read_manifest("/nonexistent") is None
    True
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .params import as_dict, params_hash, project_root
from .verify import code_hash, cpu_model

LIBRARIES = ("torch", "transformers", "trl", "peft", "vllm", "papermill", "math-verify", "numpy", "pandas")
PYTHONHASHSEED = "0"   # fixed so that set/dict iteration over strings is the same in every run




def _git(root: Path) -> tuple[str | None, bool | None]:
    """(HEAD sha, dirty) of the project checkout; (None, None) outside git."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    if git("rev-parse", "--is-inside-work-tree") is None:
        return None, None
    sha = git("rev-parse", "HEAD")
    # outputs/ is excluded: a batch writes there, which must not make the next run "dirty"
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)outputs")
    return (sha.strip() if sha else None), (bool(status.strip()) if status is not None else None)


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _toy_weights(params) -> str | None:
    """sha256 (16 hex) of the toy model's weights a run uses, without building one."""
    model = as_dict(params).get("model")
    if not (isinstance(model, str) and model.startswith("toy:")):
        return None
    from sclab.toy.build import built_path, shipped_path, weights_sha256
    from sclab.toy.registry import TOY_MODELS

    name = model[4:]
    if name not in TOY_MODELS:
        return None
    path = shipped_path(name) or built_path(name)
    return weights_sha256(path)[:16] if (path / "model.safetensors").exists() else None


def base_manifest(stem: str, preset: str, params, nb_path: Path, overrides: dict | None = None) -> dict:
    """Everything known before the run starts; `run_notebook` adds times and the exit status."""
    sha, dirty = _git(project_root())
    try:
        version = metadata.version("sclab")
    except metadata.PackageNotFoundError:
        version = None
    return {
        "notebook": stem,
        "preset": preset,
        "sclab": version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": _versions(),
        "seed": as_dict(params).get("seed"),
        "git_sha": sha,
        "git_dirty": dirty,
        "params_hash": params_hash(params),
        "code_hash": code_hash(stem),
        "overrides": dict(overrides or {}),
        "toy_weights_sha256": _toy_weights(params),
        "cpu": cpu_model(),
        "notebook_sha256": hashlib.sha256(nb_path.read_bytes()).hexdigest()[:16],
        "pythonhashseed": PYTHONHASHSEED,
    }


def read_manifest(directory: Path) -> dict | None:
    path = Path(directory) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
