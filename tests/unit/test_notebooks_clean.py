"""Committed notebooks carry no outputs, and each notebook's parameters cell, its dataclass and
every preset file have exactly the same keys."""
import json
from pathlib import Path

import pytest
import yaml

from sclab.runs.notebook_params import field_default
from sclab.runs.params import NOTEBOOK_PARAMS, notebook_parameters

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(nb):
    cells = json.loads(nb.read_text())["cells"]
    for i, c in enumerate(cells):
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, f"{nb.name} cell {i} has outputs"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_matches_dataclass_and_presets(nb):
    import dataclasses

    cls = NOTEBOOK_PARAMS[nb.stem]
    cell = notebook_parameters(nb)
    fields = {f.name: field_default(f) for f in dataclasses.fields(cls)}  # list fields have a default factory
    assert set(cell) == set(fields)
    assert cell == fields  # the cell's defaults are the dataclass defaults (= the quick preset)
    presets = sorted((ROOT / "params" / nb.stem).glob("*.yaml"))
    assert any(p.stem == "quick" for p in presets)
    for p in presets:
        keys = set(yaml.safe_load(p.read_text()))
        assert keys == set(fields), f"{p}: {keys ^ set(fields)}"
    quick = yaml.safe_load((ROOT / "params" / nb.stem / "quick.yaml").read_text())
    assert quick == fields
    for k in ("model", "backend", "seed"):
        assert k in fields
