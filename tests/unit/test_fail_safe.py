"""Runs that fail safe: a stopped `sclab run` leaves no process behind, bad values never reach a
kernel, and one output directory takes one run at a time.

Unit tests need no kernel. The `smoke` ones start `sclab run` as a real process on a tiny
notebook in a tmp project (no model: a kernel start costs ~3 s), signal it and poll psutil for
every process of the run; together they start 11 kernels (~45 s on 2 cores).
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from sclab import cli
from sclab.runs.execute import finish_run
from sclab.runs.lock import RunLocked, run_lock
from sclab.runs.procs import Stopped, hold_signals, raise_if_stopped, stop_on_signals

unit = pytest.mark.unit  # per test: the smoke ones below start kernels and stay out of `-m unit`

FAST_S = 5.0      # a refusal: validation and a lock, no kernel
CLEANUP_S = 5.0   # "within a few seconds": measured 0.2-0.4 s on 2 busy cores
START_S = 60.0    # a kernel start on 2 cores shared with a model build

# The notebook holds (a 300 s grandchild in its own session, then a 120 s sleep) while
# <root>/hold exists, and finishes at once without it: the same notebook is stopped, then resumed.
HOLD_CELL = """
import json, os, pathlib, subprocess, time
run = pathlib.Path(os.environ["SCLAB_RUN_DIR"])
if (pathlib.Path(os.environ["SCLAB_ROOT"]) / "hold").exists():
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)  # only a tree walk finds it
    (run / "pids.json").write_text(json.dumps([os.getpid(), child.pid]))
    time.sleep(120)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A tmp project whose 00_quickstart is a tiny notebook (QuickstartParams, no model)."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "params" / "00_quickstart").mkdir(parents=True)
    (root / "params" / "00_quickstart" / "quick.yaml").write_text("n_problems: 3\n")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n_problems = 3  # unused\n")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# hold"), params, nbformat.v4.new_code_cell(HOLD_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / "00_quickstart.ipynb")
    monkeypatch.setenv("SCLAB_ROOT", str(root))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("SCLAB_OUTPUTS", raising=False)
    monkeypatch.delenv("SCLAB_RUN_DIR", raising=False)
    return root


def sclab_run(root: Path, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sclab.cli", "run", "00_quickstart", *args],
                            env=dict(os.environ), cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


# ---------------------------------------------------------------------------------------------
# Bad values: refused within seconds, before a kernel starts

# (case, -p overrides, substrings of the message): the values of the issue
REFUSED = [
    ("negative count", ["-p", "n_problems", "-5"], ["-p n_problems", "params/00_quickstart/quick.yaml",
                                                   "'n_problems' must lie in [1, ∞), got -5"]),
    ("zero batch", ["-p", "batch_size", "0"], ["-p batch_size", "quick.yaml", "'batch_size' must lie in [1, ∞), got 0"]),
    ("negative temperature", ["-p", "temperature", "-1"], ["-p temperature", "quick.yaml",
                                                          "'temperature' must lie in [0, ∞), got -1.0"]),
    ("vllm missing", ["-p", "backend", "vllm"], ["-p backend", "quick.yaml", "needs the vllm package",
                                                "pip install -e '.[vllm]'", "backend hf"]),
]


@unit
@pytest.mark.parametrize("case,args,expected", REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_values_refused_before_a_kernel_starts(project, case, args, expected):
    if case == "vllm missing" and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")  # test_params forces the missing case on any machine
    t0 = time.monotonic()
    cli_proc = sclab_run(project, *args)
    out, err = cli_proc.communicate(timeout=60)
    assert time.monotonic() - t0 < FAST_S
    assert cli_proc.returncode == 2 and "Traceback" not in err, err
    for s in expected:
        assert s in err, (s, err)
    # nothing was written, not even the lock or a `.partial`: no kernel can have started
    assert not (project / "outputs").exists()


# ---------------------------------------------------------------------------------------------
# Stop signals in the runner


@unit
def test_stop_signal_raises_once_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped) as err:
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes: Stopped comes before this ends
    assert err.value.signum == signal.SIGTERM and str(err.value) == "SIGTERM"
    assert isinstance(err.value, KeyboardInterrupt)  # `except Exception` does not swallow it
    assert signal.getsignal(signal.SIGTERM) is before

    cleaned = []
    with pytest.raises(Stopped) as err:
        with stop_on_signals():
            with hold_signals():  # bookkeeping: the signal is noted, not raised
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(0.05)
                cleaned.append("held")
            try:
                raise_if_stopped()
            except Stopped:
                os.kill(os.getpid(), signal.SIGINT)  # a second signal does not cut the clean-up
                time.sleep(0.05)
                cleaned.append("cleaned")
                raise
    assert cleaned == ["held", "cleaned"] and err.value.signum == signal.SIGHUP


# ---------------------------------------------------------------------------------------------
# One run per output directory

HOLDER = """
import sys, time
from pathlib import Path
from sclab.runs.lock import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@unit
def test_lock_refuses_a_second_run_and_dies_with_its_holder(project):
    final = project / "outputs" / "00_quickstart" / "quick"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(final)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    with pytest.raises(RunLocked) as err:
        with run_lock(final):
            pass
    msg = str(err.value)
    assert msg.startswith(f"outputs/00_quickstart/quick is being written by pid {holder.pid} (`")
    assert "-c" in msg and "one run per output directory" in msg and f"kill {holder.pid}" in msg
    assert "lock: outputs/00_quickstart/quick.lock" in msg
    # SIGKILL: the kernel drops the flock with the process; the next run gets it at once
    holder.kill()
    holder.wait()
    t0 = time.monotonic()
    with run_lock(final) as fd:
        assert time.monotonic() - t0 < 1
        note = json.loads(os.pread(fd, 4096, 0))
        assert note["pid"] == os.getpid()  # the new holder's note replaced the dead one's
        with run_lock(final) as again:  # re-entrant in one process: a batch locks first, then runs
            assert again == fd


@unit
def test_refusal_names_a_holder_that_has_exited(project):
    # a runner killed with SIGKILL: its launcher still holds the lock while it stops the kernel
    from sclab.runs.lock import _refusal

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)
    msg = _refusal(project / "outputs" / "x" / "quick", project / "outputs" / "x" / "quick.lock",
                   {"pid": pid, "command": "sclab run x", "started": "t0"})
    assert f"pid {pid} (`sclab run x`, started t0); that process has exited and its notebook is being stopped" in msg


@unit
def test_finish_run_marks_a_dead_run_interrupted(project):
    # what the launcher (runner killed) and the next run (power loss) do with a `.partial`
    partial = project / "outputs" / "00_quickstart" / "quick.partial"
    partial.mkdir(parents=True)
    (partial / "params.yaml").write_text("n_problems: 3\n")
    (partial / "manifest.json").write_text(json.dumps({"notebook": "00_quickstart", "status": "running",
                                                       "start": "2020-01-01T00:00:00+00:00"}))
    where = finish_run(partial, "interrupted", stopped_by="found unfinished by the next run")
    assert where == partial.with_name("quick.failed") and not partial.exists()
    manifest = json.loads((where / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["returncode"] is None
    assert manifest["stopped_by"] == "found unfinished by the next run"
    assert manifest["wall_s"] > 3e7  # since 2020: computed from the recorded start
    assert json.loads((where / "metrics.json").read_text())["params"] == {"n_problems": 3}
    assert not (project / "outputs" / "00_quickstart" / "quick").exists()  # never taken for a finished run


# ---------------------------------------------------------------------------------------------
# A running `sclab run`, stopped by each signal (smoke: real processes and kernels)


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _start_holding(root: Path) -> tuple[subprocess.Popen, list[psutil.Process], list[int]]:
    """Start a run that holds; returns (runner, every process of the run, [kernel, grandchild])."""
    (root / "hold").touch()
    runner = sclab_run(root, "--timeout", "300", start_new_session=True)  # a group of its own to kill
    pids = root / "outputs" / "00_quickstart" / "quick.partial" / "pids.json"
    deadline = time.monotonic() + START_S
    while not pids.exists():
        assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
        time.sleep(0.1)
    time.sleep(0.2)  # the kernel wrote the file; let the write finish
    tree = [psutil.Process(runner.pid), *psutil.Process(runner.pid).children(recursive=True)]
    return runner, tree, json.loads(pids.read_text())


def _leftovers(tmp_path: Path) -> list:
    runtime = str(tmp_path / "runtime")  # every kernel of these tests has its connection file here
    return [p.pid for p in psutil.process_iter(["cmdline", "status"])
            if runtime in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]


# (signal, to the runner's whole process group): `timeout -s KILL` and CI cancels kill the group
STOPS = [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGHUP, False),
         (signal.SIGKILL, False), (signal.SIGKILL, True)]


@pytest.mark.smoke
@pytest.mark.parametrize("sig,group", STOPS, ids=[signal.Signals(s).name + ("-group" if g else "") for s, g in STOPS])
def test_stopped_run_leaves_no_process_and_resumes(project, tmp_path, sig, group):
    runner, tree, (kernel, grandchild) = _start_holding(project)
    pids = {p.pid for p in tree}
    # runner, launcher (papermill), kernel and the kernel's own-session child
    assert len(pids) == 4 and {runner.pid, kernel, grandchild} <= pids, tree
    t0 = time.monotonic()
    if group:
        os.killpg(runner.pid, sig)  # the runner leads its group (start_new_session below)
    else:
        os.kill(runner.pid, sig)
    while not all(_gone(p) for p in tree) and time.monotonic() - t0 < 15:
        time.sleep(0.02)
    cleanup = time.monotonic() - t0
    print(f"{signal.Signals(sig).name}{' (group)' if group else ''}: every process of the run gone "
          f"{cleanup:.2f} s after the signal")
    assert [p.pid for p in tree if not _gone(p)] == [] and cleanup < CLEANUP_S, cleanup
    assert _leftovers(tmp_path) == []
    out, err = runner.communicate(timeout=10)
    assert runner.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), err

    # left marked as interrupted, never as a finished run
    outputs = project / "outputs" / "00_quickstart"
    assert sorted(p.name for p in outputs.iterdir()) == ["quick.failed", "quick.lock"]
    manifest = json.loads((outputs / "quick.failed" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["stopped_by"] == (f"its runner (pid {runner.pid}) died" if sig == signal.SIGKILL
                                      else signal.Signals(sig).name)
    if sig != signal.SIGKILL:
        assert f"stopped by {signal.Signals(sig).name}" in err and str(outputs / "quick.failed") in err

    # the next `sclab run` is not locked out and finishes the run
    (project / "hold").unlink()
    again = sclab_run(project)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert json.loads((outputs / "quick" / "manifest.json").read_text())["status"] == "ok"
    assert sorted(p.name for p in outputs.iterdir()) == ["quick", "quick.lock"]


@pytest.mark.smoke
def test_two_runs_on_one_directory_cannot_both_write(project, tmp_path, capsys):
    first, tree, _ = _start_holding(project)
    partial = project / "outputs" / "00_quickstart" / "quick.partial"
    before = {p.name: p.stat().st_mtime_ns for p in partial.iterdir()}
    t0 = time.monotonic()
    code = cli.main(["run", "00_quickstart"])  # in-process: the same directory
    assert time.monotonic() - t0 < FAST_S
    err = capsys.readouterr().err
    assert code == 2
    assert (f"sclab: error: outputs/00_quickstart/quick is being written by pid {first.pid} "
            f"(`{sys.executable} -m sclab.cli run 00_quickstart --timeout 300`") in err
    # --all is refused the same way, before its first notebook starts
    assert cli.main(["run", "--all"]) == 2 and f"pid {first.pid}" in capsys.readouterr().err
    # the running one's files are untouched, and only one run directory exists
    assert {p.name: p.stat().st_mtime_ns for p in partial.iterdir()} == before
    assert sorted(p.name for p in partial.parent.iterdir()) == ["quick.lock", "quick.partial"]
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)
    assert first.returncode == 128 + signal.SIGTERM
    assert all(_gone(p) for p in tree)
