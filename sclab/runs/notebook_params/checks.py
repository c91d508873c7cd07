"""Choice checks and requirements that several notebooks' fields share (model, backend, task, strategy).

A check takes (value, project root) and returns an error message without the key/file prefix
(the loader adds it), or None. None of them imports torch: `sclab run` refuses a bad value in
milliseconds. A requirement says what this machine lacks to run a value (vllm and a CUDA
device for backend vllm); only `need_backend` imports torch, and only where vllm is installed.

    >>> from sclab.runs.notebook_params.checks import check_backend, check_model
    >>> check_backend("tgi", None), check_model("toy:arith", None) is None
    ("unknown backend 'tgi'; valid: hf, vllm", True)
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from sclab.generate import BACKENDS  # torch-free: the backends load lazily
from sclab.models import HUB_ID      # torch-free


def check_backend(value: Any, root: Path) -> str | None:
    if value not in BACKENDS:
        return f"unknown backend {value!r}; valid: {', '.join(BACKENDS)}"
    return None


def check_task(value: Any, root: Path) -> str | None:
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


def check_model(value: Any, root: Path) -> str | None:
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
    if not HUB_ID.match(value):
        return (f"{value!r} is neither toy:<name>, a path (/, ./, ../, ~) "
                "nor a hub id owner/name")
    return None


def check_strategy(value: Any, root: Path) -> str | None:
    from sclab.strategies import STRATEGIES  # torch-free

    if value not in STRATEGIES:
        return f"unknown strategy {value!r}; valid: {', '.join(sorted(STRATEGIES))}"
    return None


# ---------------------------------------------------------------------------------------------
# Requirements: what this machine must have for a value to run

VLLM_INSTALL = ("pip install -e '.[vllm]' (vllm==0.31.0, built for torch 2.13.0) on a machine "
                "with a CUDA GPU; on a CPU use backend hf")


def cuda_devices() -> tuple[int, str]:
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


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None  # finds it without importing it (vllm: ~10 s)


def need_backend(value: Any, root: Path) -> str | None:
    if value != "vllm":
        return None
    if not installed("vllm"):
        return f"backend 'vllm' needs the vllm package, which is not installed here; install it: {VLLM_INSTALL}"
    n, how = cuda_devices()
    if n == 0:
        return f"backend 'vllm' needs a CUDA device and none is visible ({how}); {VLLM_INSTALL}"
    return None
