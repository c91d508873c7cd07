"""Run a notebook through `sclab run` (a subprocess, as a user would) into a temporary outputs dir."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(stem: str, out: Path, overrides: dict | None = None) -> Path:
    """Execute `stem` with the quick preset (and `-p KEY VALUE` overrides, for a shortened run);
    returns its run directory (asserts success)."""
    cmd = [sys.executable, "-m", "sclab.cli", "run", stem, "--preset", "quick", "--outputs", str(out)]
    for key, value in (overrides or {}).items():
        cmd += ["-p", key, str(value)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500, env=os.environ.copy())
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out / stem / "quick"


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["metrics"]
