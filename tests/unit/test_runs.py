"""Runs: record(), papermill execution in a process group, resume, timeout clean-up, the report.

The notebooks here are tiny ones built with nbformat in tmp_path (no model); each kernel
start costs ~2-3 s, so the file runs 5 kernels in all.
"""
from __future__ import annotations

import importlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest
import yaml

from sclab import cli
from sclab.runs.execute import run_all, run_name, run_notebook
from sclab.runs.verify import code_hash
from sclab.runs.params import NOTEBOOK_PARAMS, params_hash
from sclab.runs.report import build_report

pytestmark = pytest.mark.unit

# the module itself: `sclab.runs.record` as an attribute is the function re-exported by sclab.runs
rec = importlib.import_module("sclab.runs.record")


@dataclass
class TinyParams:
    seed: int = 0
    n: int = 3
    scale: float = 0.5
    label: str = "a"


PARAMS_CELL = 'seed = 0  # seed\nn = 3  # rows\nscale = 0.5  # factor\nlabel = "a"  # a name\n'


def make_notebook(root: Path, stem: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS_CELL)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}"), params,
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = root / "notebooks" / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def write_preset(root: Path, stem: str, values: dict, preset: str = "quick") -> None:
    folder = root / "params" / stem
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{preset}.yaml").write_text(yaml.safe_dump(values))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A tmp project (SCLAB_ROOT) whose notebooks use TinyParams; kernels' connection files
    go to tmp_path/runtime so a leftover kernel is recognisable by its command line."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    monkeypatch.setenv("SCLAB_ROOT", str(root))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("SCLAB_OUTPUTS", raising=False)
    monkeypatch.delenv("SCLAB_RUN_DIR", raising=False)
    for stem in ("01_tiny", "02_fail", "03_sleep"):
        monkeypatch.setitem(NOTEBOOK_PARAMS, stem, TinyParams)
    return root


# ---------------------------------------------------------------------------------------------
# record()


@pytest.fixture
def fresh_record(monkeypatch):
    monkeypatch.setattr(rec, "_MEMORY", {})
    monkeypatch.setattr(rec, "_NOTED", False)


def test_record_merges_and_converts(tmp_path, monkeypatch, fresh_record):
    np = pytest.importorskip("numpy")
    monkeypatch.setenv("SCLAB_RUN_DIR", str(tmp_path))
    (tmp_path / "params.yaml").write_text("seed: 3\n")
    rec.record("acc@1", np.float32(0.25))           # a numpy scalar becomes a float
    rec.record("counts", {"n": np.int64(7), "by_turn": np.array([1, 2])})
    rec.record("acc@1", 0.5)                        # recording again replaces the value
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["params"] == {"seed": 3}            # the run's params, read from params.yaml
    assert data["metrics"] == {"acc@1": 0.5, "counts": {"n": 7, "by_turn": [1, 2]}}
    assert type(data["metrics"]["counts"]["n"]) is int
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "params.yaml"]  # no temp files


def test_record_is_atomic(tmp_path, monkeypatch, fresh_record):
    # a crash between writing and replacing leaves the old metrics.json intact and no temp file
    monkeypatch.setenv("SCLAB_RUN_DIR", str(tmp_path))
    rec.record("a", 1)
    before = (tmp_path / "metrics.json").read_text()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(rec.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        rec.record("b", 2)
    assert (tmp_path / "metrics.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    # a value JSON cannot hold fails in the recording cell, before anything is written
    monkeypatch.undo()
    monkeypatch.setenv("SCLAB_RUN_DIR", str(tmp_path))
    with pytest.raises(TypeError, match="cannot record"):
        rec.record("c", object())
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == {"a": 1}


def test_record_interactive_keeps_memory(tmp_path, monkeypatch, capsys, fresh_record):
    # no SCLAB_RUN_DIR: values stay in memory, one note, nothing written anywhere
    monkeypatch.delenv("SCLAB_RUN_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    rec.record("x", 1.5)
    rec.record("y", [1, 2])
    assert rec.save_records([{"a": 1}]) is None
    assert rec.recorded() == {"x": 1.5, "y": [1, 2]}
    assert capsys.readouterr().out.count("nothing is written") == 1
    assert list(tmp_path.iterdir()) == []


def test_save_records_and_figure(tmp_path, monkeypatch, fresh_record):
    pd = pytest.importorskip("pandas")
    plt = pytest.importorskip("matplotlib.pyplot")
    monkeypatch.setenv("SCLAB_RUN_DIR", str(tmp_path))
    path = rec.save_records(pd.DataFrame({"problem": ["p0", "p1"], "correct": [True, False]}))
    assert [json.loads(l) for l in path.read_text().splitlines()] == [
        {"problem": "p0", "correct": True}, {"problem": "p1", "correct": False}]
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1])
    png = rec.save_figure(fig, "acc by turn")
    plt.close(fig)
    assert png == tmp_path / "figures" / "acc_by_turn.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# run_notebook / run_all

RECORD_CELL = """
import os
from sclab.runs import record, save_records, save_figure
record("total", n * scale)
record("hashseed", os.environ["PYTHONHASHSEED"])
record("acc", {"t1": 0.5, "t1_lo": 0.4, "t1_hi": 0.6})
save_records([{"i": i, "label": label} for i in range(n)])
"""

FIGURE_CELL = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2)); ax.plot(range(n))
save_figure(fig, "line")
"""


def test_run_notebook_records_everything(project):
    make_notebook(project, "01_tiny", RECORD_CELL, FIGURE_CELL)
    write_preset(project, "01_tiny", {"seed": 4, "n": 3, "scale": 0.5, "label": "a"})
    result = run_notebook("01_tiny", "quick", {"n": "5"}, timeout_s=120)  # -p n 5 overrides the file
    # a run with overrides has its own directory: the preset's own (committed) run is never overwritten
    out = project / "outputs" / "01_tiny" / run_name("quick", {"n": "5"})
    assert out.name.startswith("quick+") and len(out.name) == len("quick+") + 8
    assert run_name("quick", {"n": "5"}) != run_name("quick", {"n": "6"}) and run_name("quick") == "quick"
    assert result.status == "ok" and result.run_dir == out, (result, _log(project, "01_tiny"))
    assert not (project / "outputs" / "01_tiny" / "quick").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "figures", "manifest.json", "metrics.json", "notebook.ipynb", "params.yaml", "records.jsonl"]
    assert (out / "figures" / "line.png").is_file()
    assert not (out.parent / f"{out.name}.partial").exists() and not (out.parent / f"{out.name}.failed").exists()

    resolved = {"seed": 4, "n": 5, "scale": 0.5, "label": "a"}
    assert yaml.safe_load((out / "params.yaml").read_text()) == resolved
    # the injected parameters are in the executed notebook ...
    nb = nbformat.read(out / "notebook.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 5" in injected[0].source and "seed = 4" in injected[0].source
    # ... and took effect: 5 x 0.5 computed in the kernel, 5 record rows
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == resolved
    assert metrics["metrics"]["total"] == 2.5
    assert metrics["metrics"]["hashseed"] == "0"  # PYTHONHASHSEED fixed in the kernel
    assert len((out / "records.jsonl").read_text().splitlines()) == 5

    manifest = json.loads((out / "manifest.json").read_text())
    assert metrics["manifest"] == manifest
    assert manifest["status"] == "ok" and manifest["returncode"] == 0
    assert manifest["params_hash"] == params_hash(resolved) == result.params_hash
    assert manifest["seed"] == 4 and manifest["preset"] == "quick" and manifest["overrides"] == {"n": "5"}
    assert manifest["code_hash"] == code_hash("01_tiny") and manifest["cpu"]
    assert manifest["libraries"]["papermill"].startswith("2.7")
    assert manifest["git_sha"] is None and manifest["git_dirty"] is None  # tmp project: not in git
    assert 0 < manifest["wall_s"] < 120


def test_run_all_resumes(project, capsys):
    make_notebook(project, "01_tiny", "from sclab.runs import record\nrecord('total', n * scale)")
    write_preset(project, "01_tiny", {"seed": 0, "n": 2, "scale": 1.0, "label": "a"})
    write_preset(project, "01_tiny", {"seed": 0, "n": 2, "scale": 1.0, "label": "a"}, preset="other")
    metrics = project / "outputs" / "01_tiny" / "quick" / "metrics.json"

    # first batch runs it: one progress line with the wall time
    [first] = run_all("quick", timeout_s=120)
    assert first.status == "ok", _log(project, "01_tiny")
    assert re.fullmatch(r"\[1/1\] 01_tiny \[quick\] ok in \d+\.\d s\n", capsys.readouterr().out)
    stamp = metrics.stat().st_mtime_ns
    # an interrupted batch resumes: the finished run with the same params hash is skipped
    [again] = run_all("quick", timeout_s=120)
    assert again.status == "skipped" and metrics.stat().st_mtime_ns == stamp
    assert f"skipped: finished run with the same params and code ({first.params_hash})" in capsys.readouterr().out
    # a changed package file changes the code hash: it runs again
    (project / "sclab").mkdir(exist_ok=True)
    (project / "sclab" / "touched.py").write_text("# a change\n")
    [rerun] = run_all("quick", timeout_s=120)
    assert rerun.status == "ok" and metrics.stat().st_mtime_ns != stamp
    capsys.readouterr()
    # a changed parameter changes the hash: it runs again and the new value is recorded
    write_preset(project, "01_tiny", {"seed": 0, "n": 2, "scale": 3.0, "label": "a"})
    [changed] = run_all("quick", timeout_s=120)
    assert changed.status == "ok" and changed.params_hash != first.params_hash
    assert json.loads(metrics.read_text())["metrics"]["total"] == 6.0
    # the other preset never ran
    assert not (project / "outputs" / "01_tiny" / "other").exists()


def test_failed_notebook_keeps_failed_dir_and_cli_exits_1(project, capsys):
    make_notebook(project, "02_fail", "from sclab.runs import record\nrecord('before', 1)",
                  "raise RuntimeError('deliberate failure')")
    write_preset(project, "02_fail", {"seed": 0, "n": 1, "scale": 1.0, "label": "a"})
    final = project / "outputs" / "02_fail" / "quick"
    final.mkdir(parents=True)  # an older finished run: a failure must leave it alone
    (final / "manifest.json").write_text('{"status": "ok"}')

    code = cli.main(["run", "02_fail", "--preset", "quick", "--timeout", "120"])
    err = capsys.readouterr().err
    failed = final.parent / "quick.failed"
    assert code == 1
    assert "02_fail" in err and str(failed / "notebook.ipynb") in err  # names it, points at it
    assert (final / "manifest.json").read_text() == '{"status": "ok"}'
    assert not (final.parent / "quick.partial").exists()
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["returncode"] != 0
    assert json.loads((failed / "metrics.json").read_text())["metrics"] == {"before": 1}
    assert "deliberate failure" in (failed / "notebook.ipynb").read_text()


SLEEP_SETUP = """
import os, pathlib, subprocess
run = pathlib.Path(os.environ["SCLAB_RUN_DIR"])
# a grandchild in its own session: only a psutil walk of the tree finds it
child = subprocess.Popen(["sleep", "300"], start_new_session=True)
(run / "pids.json").write_text(str([os.getpid(), child.pid]))
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_timeout_kills_the_whole_tree(project, tmp_path):
    make_notebook(project, "03_sleep", SLEEP_SETUP, "import time\ntime.sleep(60)")
    write_preset(project, "03_sleep", {"seed": 0, "n": 1, "scale": 1.0, "label": "a"})
    t0 = time.monotonic()
    result = run_notebook("03_sleep", "quick", timeout_s=5)  # 5 s: the cell sleeps 60 s
    elapsed = time.monotonic() - t0
    failed = project / "outputs" / "03_sleep" / "quick.failed"
    assert result.status == "timeout" and result.run_dir == failed
    assert elapsed < 15, elapsed
    assert not (project / "outputs" / "03_sleep" / "quick").exists()
    assert json.loads((failed / "manifest.json").read_text())["status"] == "timeout"
    assert (failed / "notebook.ipynb").is_file()

    kernel_pid, grandchild_pid = json.loads((failed / "pids.json").read_text())  # the kernel did run
    deadline = time.monotonic() + 2
    while not (_gone(kernel_pid) and _gone(grandchild_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(kernel_pid) and _gone(grandchild_pid)
    # nothing of this run survives: no ipykernel_launcher with this run's connection file
    runtime = str(tmp_path / "runtime")
    left = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if runtime in cmd and p.info["status"] != psutil.STATUS_ZOMBIE:
            left.append((p.pid, cmd))
    assert left == []


def _log(root: Path, stem: str) -> str:
    log = root / "outputs" / stem / "quick.failed" / "run.log"
    return log.read_text()[-3000:] if log.exists() else ""


# ---------------------------------------------------------------------------------------------
# report


def fake_run(outputs: Path, stem: str, preset: str, metrics: dict, wall: float, sha: str | None,
             figures: tuple[str, ...] = (), params: dict | None = None, code_hash: str | None = None) -> None:
    d = outputs / stem / preset
    (d / "figures").mkdir(parents=True)
    manifest = {"status": "ok", "wall_s": wall, "params_hash": f"h-{stem}", "git_sha": sha, "git_dirty": False,
                **({"code_hash": code_hash} if code_hash else {})}
    (d / "manifest.json").write_text(json.dumps(manifest))
    (d / "metrics.json").write_text(json.dumps({"params": params or {}, "manifest": manifest, "metrics": metrics}))
    for f in figures:
        (d / "figures" / f).write_bytes(b"\x89PNG")


def test_report_tables(tmp_path):
    out = tmp_path / "outputs"
    fake_run(out, "01_b", "quick", {"acc": {"t1": 0.41234, "t1_lo": 0.3, "t1_hi": 0.5}, "n": 200,
                                    "notes": "ok", "curve": [1, 2]}, 12.345, "0123456789abcdef",
             figures=("z.png", "a.png"))
    fake_run(out, "00_a", "quick", {"acc": {"t1": 0.5}, "delta": -0.0125, "ok": True}, 3.0, None)
    (out / "00_a" / "quick.partial").mkdir()  # unfinished: not a run
    path = build_report(out)
    assert path == out / "REPORT.md"
    text = path.read_text()
    assert text.startswith("# sclab — findings\n") and "No run recorded findings yet." in text
    # the runs, sorted; git sha shortened; missing values as an em dash
    assert ("| notebook | preset | status | wall time | git sha | code hash | toy weights | cpu |\n"
            "|---|---|---|---|---|---|---|---|\n"
            "| 00_a | quick | ok | 3.0 s | — | `—` | `—` | — |\n"
            "| 01_b | quick | ok | 12.3 s | 0123456789 | `—` | `—` | — |\n") in text
    # per run: its top-level numbers with their CI, then its figures as relative links, sorted
    assert "## 00_a/quick\n\n[executed notebook](00_a/quick/notebook.ipynb); all 3 metrics in [metrics.csv](metrics.csv).\n\n" \
           "| metric | value [95% CI] |\n|---|---|\n| `delta` | -0.013 |\n" in text
    assert "![01_b/quick a](01_b/quick/figures/a.png)\n![01_b/quick z](01_b/quick/figures/z.png)\n" in text
    assert ".partial" not in text
    # every metric in the CSV: dotted names, lo/hi in their own columns, lists left out
    csv = (out / "metrics.csv").read_text().splitlines()
    assert csv[0] == "notebook,preset,metric,value,lo,hi"
    assert "01_b,quick,acc.t1,0.41234,0.3,0.5" in csv and "00_a,quick,delta,-0.0125,," in csv
    assert not any("curve" in line for line in csv) and len(csv) == 1 + 3 + 3
    # deterministic: a rebuild writes the same bytes
    assert build_report(out).read_text() == text


def test_report_findings_table(tmp_path):
    from sclab.runs.findings import Finding

    out = tmp_path / "outputs"
    found = [Finding("d", "Huang et al. 2023", "2310.01798", "no intrinsic gain", "GSM8K 75.9 -> 75.1",
                     "delta", "~0", "built-in"),
             Finding("o", "Huang et al. 2023", "2310.01798", "oracle stopping helps", "GSM8K +7.7",
                     "oracle_delta", ">delta", "emergent"),
             Finding("x", "Kumar et al. 2024", "2409.12917", "SCoRe improves", "MATH +4.4", "score", ">0", "emergent")]
    fake_run(out, "01_c", "quick", {"delta": 0.01, "delta_lo": -0.02, "delta_hi": 0.04, "oracle_delta": 0.2,
                                    "score": -0.01, "findings": [f.__dict__ for f in found]}, 1.0, None)
    text = build_report(out).read_text()
    head = text.split("## Runs")[0]
    assert "| Huang et al. 2023 ([2310.01798](https://arxiv.org/abs/2310.01798)) | no intrinsic gain | GSM8K 75.9 -> 75.1 | " \
           "`delta` = 0.010 [-0.020, 0.040] (expected ~0) | ✓ | — | built-in | 01_c/quick |" in head
    assert "`oracle_delta` = 0.200 (expected >delta) | ✓ | — | emergent" in head
    assert "`score` = -0.010 (expected >0) | ✗ | — | emergent" in head


def test_report_spreads_each_finding_over_the_presets_seed_runs(tmp_path):
    """Runs named <preset>+seed<N> are the preset with another seed: each finding of the preset's run gets
    the mean ± sd over it and them (sd with ddof 1) and how many kept its direction; they get no rows of
    their own. A seed run from other code, with other parameters, or with the preset's own seed is left
    out of the spread (it would bias it), and a run with other overrides is no seed run."""
    from sclab.runs.findings import Finding

    out = tmp_path / "outputs"
    f = [Finding("x", "Kumar et al. 2024", "2409.12917", "SCoRe improves", "MATH +4.4", "score", ">0", "emergent")]
    runs = {"quick": (0.10, 0, 5, "c1"), "quick+seed1": (0.20, 1, 5, "c1"), "quick+seed2": (-0.03, 2, 5, "c1"),
            "quick+seed3": (7.0, 3, 5, "c0"),        # older code
            "quick+seed4": (8.0, 4, 6, "c1"),        # other parameters
            "quick+seed0": (0.10, 0, 5, "c1"),       # the preset's own seed again
            "quick+1a2b3c4d": (9.0, 0, 9, "c1")}     # other overrides
    for preset, (v, seed, n, code) in runs.items():
        fake_run(out, "02_d", preset, {"score": v, "score_lo": v - 0.05, "score_hi": v + 0.05,
                                       "findings": [x.__dict__ for x in f]}, 1.0, None,
                 params={"seed": seed, "n_problems": n}, code_hash=code)
    assert run_name("quick", {"seed": "2"}) == "quick+seed2" and run_name("quick", {"seed": "2", "n": "5"}) != "quick+seed2"
    text = build_report(out).read_text()
    head = text.split("## Runs")[0]
    vals = [0.10, 0.20, -0.03]
    mean = sum(vals) / 3
    sd = (sum((v - mean) ** 2 for v in vals) / 2) ** 0.5
    assert f"| ✓ | {mean:.3f} ± {sd:.3f} (3 seeds; ✓ 2/3) | emergent | 02_d/quick |" in head
    # one row for the preset's run; the hashed override run is a run of its own (no seed spread)
    assert head.count("SCoRe improves") == 2 and "| 02_d/quick+1a2b3c4d |" in head and "02_d/quick+seed1 |" not in head
    assert "| 02_d | quick+seed3 |" in text.split("## Runs")[1]   # every run is still listed


def test_cli_seeds_run_each_seed_into_its_own_directory(monkeypatch):
    """`sclab run NB --seeds 1 2` is one run per seed with only the seed overridden; -p overrides beside it,
    a negative seed or one given twice are refused before anything runs."""
    import sclab.cli as cli
    import sclab.runs.execute as execute

    calls = []
    monkeypatch.setattr(execute, "run_many", lambda stems, preset, over, outputs, timeout: calls.append((stems, over)) or [])
    assert cli.main(["run", "00_quickstart", "--seeds", "1", "2"]) == 0
    assert calls == [(["00_quickstart"], {"seed": "1"}), (["00_quickstart"], {"seed": "2"})]
    for bad in (["--seeds", "1", "-p", "seed", "3"], ["--seeds", "1", "-p", "n_problems", "5"], ["--seeds", "-1"],
                ["--seeds", "1", "1"]):
        with pytest.raises(SystemExit) as e:
            cli.main(["run", "00_quickstart", *bad])
        assert e.value.code == 2
    assert len(calls) == 2
