"""Load a model and its tokenizer from a spec: `toy:<name>`, a local path, or a hub id (+ LoRA).

    >>> from sclab.models import load
    >>> model, tok = load("toy:arith-tiny")   # built in seconds on first use, then cached

A hub id downloads only where a network is there (users' machines); every default run and
test here uses the toy world or a local path.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelRef:
    """Where a spec points: a local directory (`path`) or a hub id (`hub_id`)."""

    spec: str
    path: Path | None
    hub_id: str | None

    @property
    def source(self) -> str:
        return str(self.path) if self.path else self.hub_id


def looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec in (".", "..")


def resolve(spec: str, build: bool = True) -> ModelRef:
    """Turn a spec into a local directory or a hub id, with clear errors for what cannot exist.

    `toy:<name>` builds (once) and caches the toy model unless `build=False`."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"model: expected 'toy:<name>', a local path or a hub id, got {spec!r}")
    if spec.startswith("toy:"):
        from sclab.toy.registry import TOY_MODELS

        name = spec[4:]
        if name not in TOY_MODELS:
            raise ValueError(f"model {spec!r}: unknown toy model; valid: "
                             + ", ".join(f"toy:{n}" for n in sorted(TOY_MODELS)))
        if not build:
            return ModelRef(spec, None, None)
        from sclab.toy.build import toy_model_path

        return ModelRef(spec, toy_model_path(name), None)
    path = Path(spec).expanduser()
    if looks_like_path(spec) or path.exists():
        # transformers' own message for a missing path talks about the hub, which misleads
        if not path.exists():
            raise FileNotFoundError(f"model path {str(path)!r} does not exist")
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"model path {str(path)!r} has no config.json: not a saved model "
                                    f"(save one with model.save_pretrained(path))")
        return ModelRef(spec, path.resolve(), None)
    if not HUB_ID.match(spec):
        raise ValueError(f"model {spec!r}: not a toy model (toy:<name>), an existing path or a hub id (owner/name)")
    return ModelRef(spec, None, spec)


def load(spec: str, adapter: str | None = None, dtype: str = "auto", device: str | None = None):
    """Load (model, tokenizer). `adapter` is a PEFT LoRA directory applied on top (not merged)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = resolve(spec)
    if adapter is not None and not Path(adapter).expanduser().exists():
        raise FileNotFoundError(f"adapter path {adapter!r} does not exist")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = {"auto": (torch.bfloat16 if device == "cuda" else torch.float32),
                   "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    tok = AutoTokenizer.from_pretrained(ref.source)
    tok.padding_side = "left"  # decoder-only batched generation
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(ref.source, dtype=torch_dtype).to(device)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(Path(adapter).expanduser()))
    model.eval()
    model.sclab_spec = spec if adapter is None else f"{spec}+{adapter}"
    return model, tok


def fingerprint(model, max_hash_params: int = 50_000_000) -> str:
    """A stable id of a model's current weights (the generation cache keys on it).

    Small models hash their parameters, so a model trained in a notebook gets a new
    fingerprint; large ones hash their name, config and parameter shapes (hashing GBs of
    weights on every call costs more than it saves)."""
    import torch

    h = hashlib.sha256()
    h.update(type(model).__name__.encode())
    h.update(model.config.to_json_string().encode())
    params = list(model.named_parameters())
    total = sum(t.numel() for _, t in params)
    if total > max_hash_params:
        # big model: its name plus the weights being trained (a LoRA adapter), if small enough
        h.update(str(getattr(model, "sclab_spec", getattr(model, "name_or_path", ""))).encode())
        params = [(n, t) for n, t in params if t.requires_grad]
        if sum(t.numel() for _, t in params) > max_hash_params:
            params = []
    for name, t in params:
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
