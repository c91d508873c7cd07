"""Running notebooks in batch: papermill in its own process group, recorded in a run directory.

`run_notebook` validates the parameters (fails fast, before any kernel starts), executes
`notebooks/<stem>.ipynb` into `outputs/<stem>/<preset>.partial/` and swaps it in as
`outputs/<stem>/<preset>/` only when the run succeeded, so a directory without a suffix is
always a finished run. A failed, timed-out or interrupted run is kept as `<preset>.failed/`
(its notebook, manifest and papermill log) for debugging; an older finished run stays.

    >>> from sclab.runs.execute import run_notebook
    >>> run_notebook("00_quickstart", "quick").status  # doctest: +SKIP
    'ok'
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil
import yaml

from .params import ParamError, as_dict, load_params, outputs_root, params_hash, project_root, presets
from .record import atomic_write, read_metrics, write_metrics

LIBRARIES = ("torch", "transformers", "trl", "peft", "vllm", "papermill", "math-verify", "numpy", "pandas")
PYTHONHASHSEED = "0"   # fixed so that set/dict iteration over strings is the same in every run
POLL_S = 0.5           # how often the parent checks the child and notes its descendants
KILL_GRACE_S = 3.0     # SIGTERM, then this long, then SIGKILL


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
            return f"skipped: finished run with the same params ({self.params_hash})"
        where = "" if self.status == "ok" else f"; see {self.notebook} and {self.run_dir / 'run.log'}"
        return f"{self.status} in {self.wall_s:.1f} s{where}"


# ---------------------------------------------------------------------------------------------
# Paths


def run_path(stem: str, preset: str, outputs: str | os.PathLike | None = None) -> Path:
    """`outputs/<stem>/<preset>`: the finished run directory (it may not exist yet)."""
    return outputs_root(outputs) / stem / preset


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def notebook_path(stem: str) -> Path:
    path = project_root() / "notebooks" / f"{stem}.ipynb"
    if not path.is_file():
        have = sorted(p.stem for p in path.parent.glob("*.ipynb"))
        raise ParamError(f"no notebook {path}; notebooks: {', '.join(have) or '(none)'}")
    return path


# ---------------------------------------------------------------------------------------------
# Manifest


def _git(root: Path) -> tuple[str | None, bool | None]:
    """(HEAD sha, dirty) of the project checkout; (None, None) outside git."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    if git("rev-parse", "--is-inside-work-tree") is None:
        return None, None
    sha = git("rev-parse", "HEAD")
    # outputs/ is excluded: a batch writes there, which must not make the next run "dirty"
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)outputs")
    return (sha.strip() if sha else None), (bool(status.strip()) if status is not None else None)


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def base_manifest(stem: str, preset: str, params, nb_path: Path) -> dict:
    """Everything known before the run starts; `run_notebook` adds times and the exit status."""
    sha, dirty = _git(project_root())
    try:
        version = metadata.version("sclab")
    except metadata.PackageNotFoundError:
        version = None
    return {
        "notebook": stem,
        "preset": preset,
        "sclab": version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": _versions(),
        "seed": as_dict(params).get("seed"),
        "git_sha": sha,
        "git_dirty": dirty,
        "params_hash": params_hash(params),
        "notebook_sha256": hashlib.sha256(nb_path.read_bytes()).hexdigest()[:16],
        "pythonhashseed": PYTHONHASHSEED,
    }


def read_manifest(directory: Path) -> dict | None:
    path = Path(directory) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The child process and its clean-up


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_tree(proc: subprocess.Popen, known: dict[int, psutil.Process]) -> None:
    """Kill papermill, its kernel and everything they started.

    jupyter_client 8.10 (jupyter_client/launcher.py, `launch_kernel`) starts the kernel with
    `start_new_session=True` on POSIX: the kernel is in its OWN session and process group,
    so os.killpg on papermill's group does not reach it. Only ipykernel's ParentPollerUnix
    (it polls getppid() every 1 s because jupyter_client sets JPY_PARENT_PID) makes the
    orphaned kernel exit about a second later; anything the kernel started in a session of
    its own (vLLM engines, a notebook's subprocess) lives on. Measured here with killpg
    alone: the kernel survived the kill and exited ~1 s later; a `sleep 300` the notebook
    had started with start_new_session=True kept running. So we signal papermill's group,
    the group of every descendant noted while it ran, and every descendant by pid (psutil
    checks that a pid was not reused before signalling).
    """
    procs = {pid: p for pid, p in known.items() if _alive(p)}  # is_running: the pid was not reused
    for p in _descendants(proc.pid):
        procs[p.pid] = p
    # start_new_session: papermill's pgid is its pid (only while it is not reaped yet)
    groups = {proc.pid} if proc.poll() is None else set()
    for p in procs.values():
        try:
            groups.add(os.getpgid(p.pid))
        except OSError:
            pass
    groups.discard(os.getpgrp())

    def signal_all(sig: int) -> None:
        for g in groups:
            try:
                os.killpg(g, sig)
            except OSError:
                pass
        for p in procs.values():
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass

    signal_all(signal.SIGTERM)
    try:
        proc.wait(timeout=KILL_GRACE_S)  # papermill: ours to reap (not via psutil, keeps its rc)
    except subprocess.TimeoutExpired:
        pass
    _wait_gone(procs.values(), KILL_GRACE_S)
    signal_all(signal.SIGKILL)
    proc.wait()
    _wait_gone(procs.values(), KILL_GRACE_S)


def _alive(p: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie waits for init to reap it, harmlessly)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)


def _execute(nb_path: Path, workdir: Path, kernel_name: str, timeout_s: float) -> tuple[str, int | None]:
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
        sys.executable, "-m", "papermill", str(nb_path), str(workdir / "notebook.ipynb"),
        "-f", str(workdir / "params.yaml"),   # the injected parameters = the resolved params
        "-k", kernel_name,                    # "python3": ipykernel's spec, run with this interpreter
        "--language", "python",               # papermill needs it when the notebook has no kernelspec
        "--cwd", str(root),                   # relative paths in params resolve against the root
        "--log-output", "--no-progress-bar",
    ]
    known: dict[int, psutil.Process] = {}
    with open(workdir / "run.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)  # its own process group, killed whole
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    rc = proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                for p in _descendants(proc.pid):  # noted now: once papermill dies they are orphans
                    known.setdefault(p.pid, p)
                if time.monotonic() > deadline:
                    _kill_tree(proc, known)
                    return "timeout", proc.returncode
        except BaseException:  # Ctrl-C: the child is in another session and did not get it
            _kill_tree(proc, known)
            raise
    # papermill shuts its kernel down; anything left (a notebook's own subprocess) goes now
    survivors = [p for p in known.values() if _alive(p)]
    if survivors:
        _kill_tree(proc, {p.pid: p for p in survivors})
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


def run_notebook(stem: str, preset: str, overrides: dict[str, str] | None = None,
                 outputs_root: str | os.PathLike | None = None, timeout_s: float = 1800,
                 kernel_name: str = "python3") -> RunResult:
    """Execute one notebook with a preset (+ overrides) and record it in `outputs/<stem>/<preset>/`."""
    nb_path = notebook_path(stem)
    params = load_params(stem, preset, overrides)  # ParamError before anything is written
    final = run_path(stem, preset, outputs_root)
    partial, failed = _sibling(final, ".partial"), _sibling(final, ".failed")
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run
    (partial / "figures").mkdir(parents=True)
    resolved = as_dict(params)
    atomic_write(partial / "params.yaml", yaml.safe_dump(resolved, sort_keys=False))
    manifest = base_manifest(stem, preset, params, nb_path)

    start, t0 = _now(), time.monotonic()
    status, rc = "interrupted", None
    try:
        status, rc = _execute(nb_path, partial, kernel_name, timeout_s)
    finally:
        wall = round(time.monotonic() - t0, 2)
        manifest.update({"start": start, "end": _now(), "wall_s": wall, "timeout_s": timeout_s,
                         "status": status, "returncode": rc})
        atomic_write(partial / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        recorded = read_metrics(partial)["metrics"]
        write_metrics(partial, {"params": resolved, "manifest": manifest, "metrics": recorded})
        _tidy_notebook(partial / "notebook.ipynb", nb_path, final if status == "ok" else failed)
        if status == "ok":
            (partial / "run.log").unlink(missing_ok=True)  # the executed notebook has the outputs
            _swap_in(partial, final)
            if failed.exists():
                shutil.rmtree(failed)  # an older failure is fixed now
        else:
            if failed.exists():
                shutil.rmtree(failed)
            os.replace(partial, failed)
    return RunResult(stem, preset, status, final if status == "ok" else failed,
                     manifest["params_hash"], wall, rc)


def is_finished(stem: str, preset: str, params, outputs: str | os.PathLike | None = None) -> bool:
    """True if `outputs/<stem>/<preset>/` holds an ok run with these params (same hash)."""
    manifest = read_manifest(run_path(stem, preset, outputs))
    return bool(manifest and manifest.get("status") == "ok"
                and manifest.get("params_hash") == params_hash(params))


def runnable(preset: str) -> list[str]:
    """Stems of the notebooks that have `params/<stem>/<preset>.yaml`, in order."""
    root = project_root()
    return sorted(p.stem for p in (root / "notebooks").glob("*.ipynb")
                  if (root / "params" / p.stem / f"{preset}.yaml").is_file())


def run_many(stems: list[str], preset: str, overrides: dict[str, str] | None = None,
             outputs_root: str | os.PathLike | None = None, timeout_s: float = 1800,
             skip_finished: bool = False, kernel_name: str = "python3") -> list[RunResult]:
    """Run notebooks one after another, one progress line each; a failure does not stop the batch.

    Every notebook's parameters are validated before the first one starts.
    """
    for stem in stems:
        notebook_path(stem)
    resolved = {stem: load_params(stem, preset, overrides) for stem in stems}  # fail fast, all of them
    results = []
    for i, stem in enumerate(stems, 1):
        print(f"[{i}/{len(stems)}] {stem} [{preset}]", end=" ", flush=True)
        if skip_finished and is_finished(stem, preset, resolved[stem], outputs_root):
            result = RunResult(stem, preset, "skipped", run_path(stem, preset, outputs_root),
                               params_hash(resolved[stem]))
        else:
            result = run_notebook(stem, preset, overrides, outputs_root, timeout_s, kernel_name)
        print(result.outcome(), flush=True)
        results.append(result)
    return results


def run_all(preset: str, overrides: dict[str, str] | None = None,
            outputs_root: str | os.PathLike | None = None, timeout_s: float = 1800,
            force: bool = False, kernel_name: str = "python3") -> list[RunResult]:
    """Run every notebook that has `params/<stem>/<preset>.yaml`, skipping finished runs with
    the same params hash and status ok (so an interrupted batch resumes) unless `force`."""
    stems = runnable(preset)
    if not stems:
        folder = project_root() / "params"
        known = sorted({p for d in folder.glob("*/") for p in presets(d.name)})
        raise ParamError(f"no notebook has preset {preset!r}; presets: {', '.join(known) or '(none)'}")
    return run_many(stems, preset, overrides, outputs_root, timeout_s, not force, kernel_name)


__all__ = ["RunResult", "run_notebook", "run_many", "run_all", "run_path", "is_finished", "runnable",
           "read_manifest", "base_manifest", "notebook_path"]
