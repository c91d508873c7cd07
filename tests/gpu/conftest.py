"""The GPU tier's device. Tests here are marked `gpu`, and tests/conftest.py skips them without
CUDA. SCLAB_GPU_TIER_DEVICE=cpu runs them on the CPU instead (slowly, in fp32 where a GPU would
train in bf16): a check of the tier's own logic on a machine without a GPU, never CI."""
from __future__ import annotations

import os

import pytest

DEVICE = os.environ.get("SCLAB_GPU_TIER_DEVICE", "cuda")


@pytest.hookimpl(trylast=True)  # after tests/conftest.py has marked the gpu tests "needs CUDA"
def pytest_collection_modifyitems(config, items):
    if DEVICE != "cpu":
        return
    for item in items:
        item.own_markers = [m for m in item.own_markers
                            if not (m.name == "skip" and m.kwargs.get("reason") == "needs CUDA")]


@pytest.fixture(scope="session")
def device() -> str:
    return DEVICE
