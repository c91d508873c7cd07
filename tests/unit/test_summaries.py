"""Every number a recorded notebook's Summary quotes is one the run recorded.

A Summary is generated from the metrics in its record cell; this test reads the executed
notebook in `outputs/<stem>/<preset>/` and checks each number in the Summary's output against
the run's metrics.json: its metrics, its params, and the numbers quoted in its findings (the
papers' own figures). A number matches a recorded value rounded to the digits shown (a
percentage as its fraction); small integers up to 3 (turn and stage numbers) are exempt.
Runs recorded before runs carried a code hash (and findings) are older code's results: `make
reproduce` flags them; this test reads the runs the current recording code wrote.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(p.parent for p in (ROOT / "outputs").glob("*/quick/notebook.ipynb")
              if "code_hash" in json.loads((p.parent / "manifest.json").read_text()))
NUMBER = re.compile(r"(?<![\w.])[+\-−]?\d+(?:[.,]\d+)?(?:\.\d+)?%?")


def recorded_numbers(data) -> list[float]:
    """Every number in a run's metrics.json, however deep, including numbers inside strings."""
    out: list[float] = []

    def walk(v):
        if isinstance(v, bool):
            return
        if isinstance(v, (int, float)):
            out.append(float(v))
        elif isinstance(v, str):
            out.extend(_value(m)[0] for m in NUMBER.findall(v))
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(data)
    return out


def _value(token: str) -> tuple[float, int]:
    """(value, decimals shown) of a number as printed; a percentage as its fraction."""
    t = token.replace("−", "-").replace(",", "")
    pct = t.endswith("%")
    t = t.rstrip("%")
    decimals = len(t.split(".")[1]) if "." in t else 0
    v = float(t)
    return (v / 100, decimals + 2) if pct else (v, decimals)


def matches(token: str, numbers: list[float]) -> bool:
    v, d = _value(token)
    if float(v).is_integer() and 0 <= v <= 3 and not token.endswith("%"):
        return True
    tol = 0.5 * 10 ** -d + 1e-9
    return any(abs(abs(x) - abs(v)) <= tol for x in numbers)


def summary_text(nb: dict) -> str:
    """The output of the code cells after the '## Summary' heading (up to the next heading)."""
    cells, inside, text = nb["cells"], False, []
    for c in cells:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown" and src.lstrip().startswith("## "):
            if inside:
                break
            inside = src.lstrip().startswith("## Summary")
            continue
        if inside and c["cell_type"] == "code":
            for o in c.get("outputs", []):
                data = o.get("data", {})
                text.append("".join(data.get("text/markdown", data.get("text/plain", ""))))
                text.append("".join(o.get("text", "")))
    return "\n".join(text)


def test_numbers_are_read_as_shown():
    assert _value("57.9%") == (0.579, 3) and _value("+0.017") == (0.017, 3) and _value("−0.214") == (-0.214, 3)
    assert matches("57.9%", [0.5791]) and not matches("57.9%", [0.5801]) and matches("2", [])
    assert not matches("0.412", [0.4134]) and matches("1000", [1000.0])


@pytest.mark.parametrize("run", RUNS, ids=[f"{r.parent.name}/{r.name}" for r in RUNS])
def test_summary_quotes_only_recorded_numbers(run):
    nb = json.loads((run / "notebook.ipynb").read_text())
    data = json.loads((run / "metrics.json").read_text())
    text = summary_text(nb)
    assert text.strip(), f"{run}: no generated Summary output found after '## Summary'"
    numbers = recorded_numbers({"metrics": data.get("metrics", {}), "params": data.get("params", {})})
    # backticked names (`again`, `acc_t1`) and arXiv ids are not quoted results
    body = re.sub(r"`[^`]*`|arXiv \d{4}\.\d{4,5}|\d{4}\.\d{4,5}", " ", text)
    unrecorded = [t for t in NUMBER.findall(body) if not matches(t, numbers)]
    assert not unrecorded, f"{run.parent.name}: the Summary quotes numbers the run did not record: {unrecorded}"
