"""Shared fixtures. Markers: unit (no model), smoke (toy model), notebooks (papermill), gpu (CUDA)."""
from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def toy():
    """The embedded default toy model (built once per cache dir, ~5 CPU minutes, then cached)."""
    from sclab.models import load

    return load("toy:arith")


@pytest.fixture(scope="session")
def toy_generator(toy, tmp_path_factory):
    from sclab.generate import Generator

    model, tok = toy
    return Generator(model, tok, cache=tmp_path_factory.mktemp("gen") / "cache.sqlite", progress=False)


@pytest.fixture
def data_dir():
    from pathlib import Path

    d = os.environ.get("SCLAB_DATA_DIR")
    if not d or not Path(d).exists():
        pytest.skip("SCLAB_DATA_DIR not set or missing: benchmark data unavailable")
    return Path(d)
