"""Trust: code hashes in the skip check, metric-by-metric verification, findings, `sclab reproduce`."""
from __future__ import annotations

import json
import math

import pytest

from sclab import cli
from sclab.runs.findings import Finding, record_findings, status, validate
from sclab.runs.verify import TIMING, code_hash, compare_metrics, tolerance

from test_runs import make_notebook, project, write_preset  # noqa: F401  (the tmp-project fixture)

pytestmark = pytest.mark.unit


def test_compare_metrics_verdicts():
    recorded = {"acc": {"t1": 0.60, "t1_lo": 0.55, "t1_hi": 0.65, "t2": 0.5},
                "delta": 0.010, "n_right": 412, "big": 200.0, "curve": [1, 2, 3], "name": "x",
                "wall_s": 10.0, "timing": {"rl_wall_s": 3.0}, "gone": 1.0, "nan": math.nan}
    rerun = {"acc": {"t1": 0.64, "t1_lo": 0.59, "t1_hi": 0.69, "t2": 0.53},
             "delta": 0.010, "n_right": 413, "big": 215.0, "curve": [1, 2, 4], "name": "x",
             "wall_s": 99.0, "timing": {"rl_wall_s": 30.0}, "nan": math.nan}
    c = compare_metrics(recorded, rerun)
    assert sorted(c.exact) == ["delta", "name", "nan"]
    # t1 moved 0.04 within its CI half-width 0.05 (and so did its bounds); t2 0.03 > 0.02 for a rate
    assert sorted(c.within) == ["acc.t1", "acc.t1_hi", "acc.t1_lo", "n_right"]  # 413 vs 412: 5% of 412
    assert {k for k, *_ in c.differs} == {"acc.t2", "big", "curve"}          # 215 vs 200 > 5% of 200
    assert c.missing == ["gone"] and not c.ok
    assert c.counts() == {"exact": 3, "within": 4, "differs": 3, "missing": 1}  # timings left out
    assert tolerance("acc.t1", {"acc.t1": 0.6, "acc.t1_lo": 0.55, "acc.t1_hi": 0.65}) == pytest.approx(0.05)


@pytest.mark.parametrize("key,timing", [("wall_s", True), ("timing.rl_wall_s", True), ("train_s", True),
                                        ("tokens_per_s", True), ("time", True), ("acc.t1", False),
                                        ("n_steps", False), ("delta_i2c", False), ("tokens", False)])
def test_timing_keys(key, timing):
    assert bool(TIMING.search(key)) is timing


def test_code_hash_covers_package_notebook_and_params(tmp_path):
    root = tmp_path
    for rel in ("sclab/a.py", "notebooks/00_x.ipynb", "params/00_x/quick.yaml", "notebooks/01_y.ipynb"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("v1")
    h = code_hash("00_x", root)
    (root / "notebooks" / "01_y.ipynb").write_text("v2")       # another notebook: no change
    (root / "outputs").mkdir()
    (root / "outputs" / "m.json").write_text("{}")             # results: no change
    (root / "sclab" / "__pycache__").mkdir()
    (root / "sclab" / "__pycache__" / "a.pyc").write_text("x")
    assert code_hash("00_x", root) == h
    for rel in ("sclab/a.py", "notebooks/00_x.ipynb", "params/00_x/quick.yaml"):
        (root / rel).write_text("v2")
        assert code_hash("00_x", root) != h, rel
        h = code_hash("00_x", root)
    (root / "sclab" / "toy").mkdir()
    (root / "sclab" / "toy" / "w.safetensors").write_bytes(b"\0\1")  # shipped weights count too
    assert code_hash("00_x", root) != h
    # a notebook's code cells count, its prose does not
    nb = lambda md, code: json.dumps({"cells": [{"cell_type": "markdown", "source": [md]},
                                                {"cell_type": "code", "source": [code], "outputs": []}]})
    (root / "notebooks" / "00_x.ipynb").write_text(nb("# Exercises", "x = 1"))
    h = code_hash("00_x", root)
    (root / "notebooks" / "00_x.ipynb").write_text(nb("# Exercises, with hints", "x = 1"))
    assert code_hash("00_x", root) == h
    (root / "notebooks" / "00_x.ipynb").write_text(nb("# Exercises, with hints", "x = 2"))
    assert code_hash("00_x", root) != h


def finding(**kw) -> Finding:
    base = dict(id="f", paper="Huang et al. 2023", arxiv="2310.01798", claim="c", paper_value="v",
                metric="delta", expect=">0", kind="emergent")
    return Finding(**{**base, **kw})


@pytest.mark.parametrize("expect,metrics,kept", [
    (">0", {"delta": 0.1}, True), (">0", {"delta": -0.1}, False), ("<0", {"delta": -0.1}, True),
    (">0", {"delta": 0.1, "delta_lo": -0.01, "delta_hi": 0.2}, False),   # an effect needs its whole CI
    (">0", {"delta": 0.1, "delta_lo": 0.01, "delta_hi": 0.2}, True),
    ("<0", {"delta": -0.1, "delta_lo": -0.2, "delta_hi": 0.01}, False),
    ("<=0", {"delta": 0.03, "delta_lo": -0.01, "delta_hi": 0.07}, True),  # no significant gain
    ("<=0", {"delta": 0.05, "delta_lo": 0.01, "delta_hi": 0.1}, False), ("<=0", {"delta": -0.2}, True),
    (">method.SCoRe w/o stage I.delta", {"delta": 0.3, "method": {"SCoRe w/o stage I": {"delta": 0.1}}}, True),
    ("~0", {"delta": 0.05, "delta_lo": -0.01, "delta_hi": 0.1}, True),
    ("~0", {"delta": 0.05, "delta_lo": 0.01, "delta_hi": 0.1}, False),
    ("~0", {"delta": 0.05}, None),                                   # no CI: not measurable
    (">other.x", {"delta": 0.3, "other": {"x": 0.2}}, True), ("<other.x", {"delta": 0.3, "other": {"x": 0.2}}, False),
    (">0", {"delta": math.nan}, None), (">0", {}, None)])
def test_finding_status(expect, metrics, kept):
    assert status(finding(expect=expect), metrics)[0] is kept


@pytest.mark.parametrize("kw,message", [
    ({"arxiv": "arXiv:2310"}, "arxiv must look like"), ({"expect": ">= 0"}, "expect must be"),
    ({"kind": "prior"}, "kind must be one of built-in, emergent"), ({"id": "Bad Id"}, "id must be"),
    ({"claim": " "}, "claim is empty")])
def test_finding_checks(kw, message):
    with pytest.raises(ValueError, match=message):
        validate([finding(**kw)])


def test_findings_name_recorded_metrics():
    with pytest.raises(ValueError, match=r"no recorded metric 'acc.t3' \(recorded under acc: acc.t1\)"):
        validate([finding(metric="acc.t3")], {"acc": {"t1": 0.5}})
    with pytest.raises(ValueError, match="no recorded metric 'base'"):
        validate([finding(expect=">base")], {"delta": 0.5})
    with pytest.raises(ValueError, match="appears twice"):
        validate([finding(), finding()])
    assert validate([finding(expect=">base")], {"delta": 0.5, "base": 0.1})[0].expect == ">base"


NB = ("from sclab.runs import record\nfrom sclab.runs.findings import Finding, record_findings\n"
      "record('acc', n * scale)\nrecord('acc_lo', n * scale - 0.5)\nrecord('acc_hi', n * scale + 0.5)\n"
      "record_findings([Finding('a', 'P', '2310.01798', 'c', 'v', 'acc', '>0', 'built-in')])")


def test_reproduce_runs_verifies_and_skips(project, capsys):
    make_notebook(project, "01_tiny", NB)
    write_preset(project, "01_tiny", {"seed": 0, "n": 2, "scale": 1.0, "label": "a"})
    assert cli.main(["run", "--all"]) == 0              # the recorded run, in outputs/
    capsys.readouterr()
    assert cli.main(["reproduce"]) == 0                 # re-run into reproduced/ and verified
    out = capsys.readouterr().out
    assert "[1/1] 01_tiny [quick] ok in" in out
    assert ("01_tiny [quick]: 4 of 4 recorded metrics reproduced exactly, 0 within tolerance, 0 differ, "
            "0 missing; findings: 1 of 1 as recorded (1 hold the paper's direction)") in out
    rerun = project / "reproduced" / "01_tiny" / "quick"
    assert json.loads((rerun / "verify.json").read_text())["counts"]["exact"] == 4
    assert cli.main(["reproduce"]) == 0                 # a second time: the re-run is skipped
    assert "skipped: finished run with the same params and code" in capsys.readouterr().out
    # a result that moved beyond its tolerance fails verification, and says which
    metrics = json.loads((rerun / "metrics.json").read_text())
    metrics["metrics"].update(acc=-1.0, acc_lo=-1.5, acc_hi=-0.5)
    (rerun / "metrics.json").write_text(json.dumps(metrics))
    assert cli.main(["verify", "01_tiny"]) == 1
    out = capsys.readouterr().out
    assert "differs: acc: recorded 2, re-run -1 (tolerance 0.5)" in out
    assert "finding a: the paper's direction holds in the recorded run, does not hold in the re-run" in out
    assert cli.main(["verify", "02_none"]) == 2         # no re-run: a clear refusal
    assert "no finished recorded run" in capsys.readouterr().err


def test_record_findings_refuses_unrecorded_metric(monkeypatch):
    import importlib

    rec = importlib.import_module("sclab.runs.record")
    monkeypatch.setattr(rec, "_MEMORY", {"acc": 0.5})
    monkeypatch.setattr(rec, "_NOTED", False)  # the one-time note stays unprinted for other tests
    monkeypatch.delenv("SCLAB_RUN_DIR", raising=False)
    with pytest.raises(ValueError, match="no recorded metric 'delta'"):
        record_findings([finding()])
    assert record_findings([finding(metric="acc")])[0]["metric"] == "acc"
