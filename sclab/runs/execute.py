"""Running notebooks in batch: papermill in its own process group, recorded in a run directory.

`run_notebook` validates the parameters (fails fast, before any kernel starts), locks the
output directory (one run at a time, `sclab.runs.lock`), executes `notebooks/<stem>.ipynb`
into `outputs/<stem>/<preset>.partial/` and swaps it in as `outputs/<stem>/<preset>/` only
when the run succeeded, so a directory without a suffix is always a finished run. A failed,
timed-out or interrupted run is kept as `<preset>.failed/` (its notebook, manifest and
papermill log) for debugging; an older finished run stays. The notebook never outlives its
runner: SIGINT, SIGTERM and SIGHUP kill its process tree (`sclab.runs.procs`), and papermill
runs under a launcher that does the same when the runner is killed (`sclab.runs.launch`).

    >>> from sclab.runs.execute import run_notebook
    >>> run_notebook("00_quickstart", "quick").status  # doctest: +SKIP
    'ok'
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

from .lock import run_lock
from .params import ParamError, as_dict, load_params, outputs_root, params_hash, project_root, presets
from .procs import Stopped, alive, descendants, hold_signals, kill_tree, raise_if_stopped, stop_on_signals, stop_signal
from .manifest import PYTHONHASHSEED, _now, base_manifest, read_manifest
from .record import atomic_write, read_metrics, write_metrics
from .verify import code_hash

POLL_S = 0.5           # how often the parent checks the child and notes its descendants


@dataclass
class RunResult:
    stem: str
    preset: str
    status: str            # "ok" | "failed" | "timeout" | "interrupted" | "skipped"
    run_dir: Path          # the finished dir if ok/skipped, else the `.failed` dir
    params_hash: str
    wall_s: float = 0.0
    returncode: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")

    @property
    def notebook(self) -> Path:
        return self.run_dir / "notebook.ipynb"

    def outcome(self) -> str:
        """How it ended and how long it took (the end of a progress line)."""
        if self.status == "skipped":
            return f"skipped: finished run with the same params and code ({self.params_hash})"
        where = "" if self.status == "ok" else f"; see {self.notebook} and {self.run_dir / 'run.log'}"
        return f"{self.status} in {self.wall_s:.1f} s{where}"


# ---------------------------------------------------------------------------------------------
# Paths


def run_path(stem: str, preset: str, outputs: str | os.PathLike | None = None) -> Path:
    """`outputs/<stem>/<preset>`: the finished run directory (it may not exist yet)."""
    return outputs_root(outputs) / stem / preset


def run_name(preset: str, overrides: dict[str, str] | None = None) -> str:
    """The run directory's name: the preset, or `<preset>+<8-hex hash of the overrides>` for a run
    with `-p` overrides, so that it never overwrites the preset's own (committed) run. A run that
    overrides the seed alone is `<preset>+seed<N>`: the report reads such runs as the preset's
    other seeds (`sclab.runs.report.seed_runs`)."""
    if not overrides:
        return preset
    if set(overrides) == {"seed"} and str(overrides["seed"]).isdigit():
        return f"{preset}+seed{int(overrides['seed'])}"
    blob = json.dumps(sorted((str(k), str(v)) for k, v in overrides.items()))
    return f"{preset}+{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def notebook_path(stem: str) -> Path:
    path = project_root() / "notebooks" / f"{stem}.ipynb"
    if not path.is_file():
        have = sorted(p.stem for p in path.parent.glob("*.ipynb"))
        raise ParamError(f"no notebook {path}; notebooks: {', '.join(have) or '(none)'}")
    return path


# ---------------------------------------------------------------------------------------------
# The child process


def _execute(nb_path: Path, workdir: Path, kernel_name: str, timeout_s: float,
             lock_fd: int | None = None) -> tuple[str, int | None]:
    """Run papermill in a child process group; returns (status, returncode)."""
    root = project_root()
    env = dict(os.environ)
    env.update({
        "SCLAB_RUN_DIR": str(workdir),
        "SCLAB_ROOT": str(root),
        "PYTHONHASHSEED": PYTHONHASHSEED,
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # silences the debugger's frozen-modules warning
    })
    cmd = [
        # the launcher: papermill in-process, and a watchdog that ends the run if we are killed
        sys.executable, "-m", "sclab.runs.launch", str(os.getpid()), "--",
        str(nb_path), str(workdir / "notebook.ipynb"),
        "-f", str(workdir / "params.yaml"),   # the injected parameters = the resolved params
        "-k", kernel_name,                    # "python3": ipykernel's spec, run with this interpreter
        "--language", "python",               # papermill needs it when the notebook has no kernelspec
        "--cwd", str(root),                   # relative paths in params resolve against the root
        "--log-output", "--no-progress-bar",
    ]
    known: dict[int, psutil.Process] = {}
    proc = None
    with open(workdir / "run.log", "wb") as log:
        try:
            with hold_signals():  # a stop signal during the fork waits until `proc` is known
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
                                        start_new_session=True,  # its own process group, killed whole
                                        # the run lock lives on in the launcher until it exits
                                        pass_fds=() if lock_fd is None else (lock_fd,))
            raise_if_stopped()
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    rc = proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                for p in descendants(proc.pid):  # noted now: once papermill dies they are orphans
                    known.setdefault(p.pid, p)
                if time.monotonic() > deadline:
                    kill_tree(known, proc)
                    return "timeout", proc.returncode
        except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: the child is in another session
            if proc is not None:
                kill_tree(known, proc)
            raise
    # papermill shuts its kernel down; anything left (a notebook's own subprocess) goes now
    survivors = {p.pid: p for p in known.values() if alive(p)}
    if survivors:
        kill_tree(survivors, proc)
    return ("ok" if rc == 0 else "failed"), rc


# ---------------------------------------------------------------------------------------------
# Runs


def _swap_in(partial: Path, final: Path) -> None:
    """Replace `final` by `partial`. Two renames: `final` is briefly absent, never half-written."""
    old = _sibling(final, ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(partial, final)
    if old.exists():
        shutil.rmtree(old)


def _rel(path: Path) -> str:
    try:
        return path.relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def _tidy_notebook(executed: Path, source: Path, final: Path) -> None:
    """Papermill records where it read and wrote: make that the notebook's final place
    (root-relative), not the `.partial` folder on this machine."""
    try:
        nb = json.loads(executed.read_text())
        meta = nb["metadata"]["papermill"]
    except (OSError, ValueError, KeyError):
        return  # no notebook, or one cut short by a kill: leave it as it is
    meta["input_path"] = _rel(source)
    meta["output_path"] = _rel(final / "notebook.ipynb")
    atomic_write(executed, json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def finish_run(partial: Path, status: str, rc: int | None = None, manifest: dict | None = None,
               wall_s: float | None = None, stopped_by: str | None = None) -> Path:
    """Record how the run in `<preset>.partial/` ended and move it: in place of the finished
    run if ok, else to `<preset>.failed/`. Called by run_notebook, by the launcher when the
    runner died, and for a `.partial` that a dead run left; the caller holds the run lock."""
    final = partial.with_name(partial.name[: -len(".partial")])
    failed = _sibling(final, ".failed")
    manifest = dict(read_manifest(partial) or {}) if manifest is None else manifest
    if wall_s is None:  # the launcher and a later run know only the recorded start
        try:
            start = dt.datetime.fromisoformat(manifest["start"])
            wall_s = round((dt.datetime.now(dt.timezone.utc) - start).total_seconds(), 2)
        except (KeyError, TypeError, ValueError):
            pass
    manifest.update({"end": _now(), "wall_s": wall_s, "status": status, "returncode": rc})
    if stopped_by:
        manifest["stopped_by"] = stopped_by
    atomic_write(partial / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    try:
        resolved = yaml.safe_load((partial / "params.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        resolved = {}
    recorded = read_metrics(partial)["metrics"]
    write_metrics(partial, {"params": resolved, "manifest": manifest, "metrics": recorded})
    where = final if status == "ok" else failed
    _tidy_notebook(partial / "notebook.ipynb", project_root() / "notebooks" / f"{manifest.get('notebook')}.ipynb", where)
    if status == "ok":
        (partial / "run.log").unlink(missing_ok=True)  # the executed notebook has the outputs
        _swap_in(partial, final)
    if failed.exists():
        shutil.rmtree(failed)  # ok: an older failure is fixed now; else replaced by this one
    if status != "ok":
        os.replace(partial, failed)
    return where


def run_notebook(stem: str, preset: str, overrides: dict[str, str] | None = None,
                 outputs_root: str | os.PathLike | None = None, timeout_s: float = 1800,
                 kernel_name: str = "python3") -> RunResult:
    """Execute one notebook with a preset (+ overrides) and record it in `outputs/<stem>/<preset>/`.

    Raises ParamError (bad parameters) or RunLocked (another run writes that directory)
    before anything is written, and Stopped on SIGINT, SIGTERM or SIGHUP once the notebook's
    processes are gone and the run is kept as `<preset>.failed/` with status interrupted.
    """
    nb_path = notebook_path(stem)
    params = load_params(stem, preset, overrides)  # ParamError before anything is written
    final = run_path(stem, run_name(preset, overrides), outputs_root)
    partial = _sibling(final, ".partial")
    with stop_on_signals(), run_lock(final) as lock_fd:  # RunLocked before anything is written
        with hold_signals():  # bookkeeping: a stop signal waits for raise_if_stopped() below
            if partial.exists():  # we hold the lock: its run died without its launcher (power loss)
                finish_run(partial, "interrupted", stopped_by="found unfinished by the next run")
            (partial / "figures").mkdir(parents=True)
            atomic_write(partial / "params.yaml", yaml.safe_dump(as_dict(params), sort_keys=False))
            manifest = base_manifest(stem, preset, params, nb_path, overrides)
            # written now, so that a run killed with SIGKILL is still recorded as one
            manifest.update({"start": _now(), "timeout_s": timeout_s, "status": "running",
                             "runner_pid": os.getpid()})
            atomic_write(partial / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        t0 = time.monotonic()
        status, rc = "interrupted", None
        try:
            raise_if_stopped()
            status, rc = _execute(nb_path, partial, kernel_name, timeout_s, lock_fd)
        except Stopped as e:
            e.run_dir = _sibling(final, ".failed")
            raise
        finally:
            wall = round(time.monotonic() - t0, 2)
            with hold_signals():
                where = finish_run(partial, status, rc, manifest, wall,
                                   stop_signal() if status == "interrupted" else None)
        raise_if_stopped()  # a signal while a finished run was swapped in: stop the batch now
    return RunResult(stem, preset, status, where, manifest["params_hash"], wall, rc)


def is_finished(stem: str, preset: str, params, outputs: str | os.PathLike | None = None,
                overrides: dict[str, str] | None = None) -> bool:
    """True if the run directory holds an ok run with these params and this code (same hashes)."""
    manifest = read_manifest(run_path(stem, run_name(preset, overrides), outputs))
    return bool(manifest and manifest.get("status") == "ok"
                and manifest.get("params_hash") == params_hash(params)
                and manifest.get("code_hash") == code_hash(stem))


def runnable(preset: str) -> list[str]:
    """Stems of the notebooks that have `params/<stem>/<preset>.yaml`, in order."""
    root = project_root()
    return sorted(p.stem for p in (root / "notebooks").glob("*.ipynb")
                  if (root / "params" / p.stem / f"{preset}.yaml").is_file())


def run_many(stems: list[str], preset: str, overrides: dict[str, str] | None = None,
             outputs_root: str | os.PathLike | None = None, timeout_s: float = 1800,
             skip_finished: bool = False, kernel_name: str = "python3") -> list[RunResult]:
    """Run notebooks one after another, one progress line each; a failure does not stop the batch.

    Every notebook's parameters are validated, and its output directory locked, before the
    first one starts; a stop signal ends the batch (Stopped) after killing the running one.
    """
    for stem in stems:
        notebook_path(stem)
    resolved = {stem: load_params(stem, preset, overrides) for stem in stems}  # fail fast, all of them
    results = []
    with stop_on_signals(), contextlib.ExitStack() as locks:
        for stem in stems:  # a busy output directory is refused before the first notebook starts
            locks.enter_context(run_lock(run_path(stem, run_name(preset, overrides), outputs_root)))
        for i, stem in enumerate(stems, 1):
            print(f"[{i}/{len(stems)}] {stem} [{preset}]", end=" ", flush=True)
            if skip_finished and is_finished(stem, preset, resolved[stem], outputs_root, overrides):
                result = RunResult(stem, preset, "skipped", run_path(stem, run_name(preset, overrides), outputs_root),
                                   params_hash(resolved[stem]))
            else:
                try:
                    result = run_notebook(stem, preset, overrides, outputs_root, timeout_s, kernel_name)
                except Stopped as e:
                    with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                        print(f"stopped by {e}", flush=True)
                    raise
            print(result.outcome(), flush=True)
            results.append(result)
    return results


def run_all(preset: str, overrides: dict[str, str] | None = None,
            outputs_root: str | os.PathLike | None = None, timeout_s: float = 1800,
            force: bool = False, kernel_name: str = "python3") -> list[RunResult]:
    """Run every notebook that has `params/<stem>/<preset>.yaml`, skipping finished runs with
    the same params and code hashes and status ok (so an interrupted batch resumes) unless `force`."""
    stems = runnable(preset)
    if not stems:
        folder = project_root() / "params"
        known = sorted({p for d in folder.glob("*/") for p in presets(d.name)})
        raise ParamError(f"no notebook has preset {preset!r}; presets: {', '.join(known) or '(none)'}")
    return run_many(stems, preset, overrides, outputs_root, timeout_s, not force, kernel_name)


__all__ = ["RunResult", "run_notebook", "run_many", "run_all", "run_path", "run_name", "is_finished", "runnable",
           "read_manifest", "base_manifest", "notebook_path", "finish_run"]
