"""The generation cache: one notebook's quick run with a cold cache, then again with the warm one.

Both runs execute the same notebook through `sclab run` (papermill, a fresh kernel each) into a
scratch outputs folder, with SCLAB_CACHE_DIR pointing at a fresh, empty cache for the first run
and the same, now filled, cache for the second; the shipped toy weights mean neither builds a
model. Last line: `ratio cold/warm: X` (goal X >= 5: generations a re-run shares are read, not
generated again).

    python benchmarks/cache.py                      # 00_quickstart quick: ~5 minutes on 2 CPU cores
    python benchmarks/cache.py --notebook 01_intrinsic -p n_problems 200
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(notebook: str, preset: str, overrides: list[list[str]], cache: Path, outputs: Path) -> float:
    env = {**os.environ, "SCLAB_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "sclab.cli", "run", notebook, "--preset", preset, "--outputs", str(outputs)]
    for k, v in overrides:
        cmd += ["-p", k, v]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebook", default="00_quickstart")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sclab-cache-bench-") as tmp:
        cache, outputs = Path(tmp) / "cache", Path(tmp) / "outputs"
        cold = timed_run(args.notebook, args.preset, args.p, cache, outputs)
        size = (cache / "generations.sqlite").stat().st_size / 2**20
        warm = timed_run(args.notebook, args.preset, args.p, cache, outputs)
    print(f"notebook {args.notebook} [{args.preset}] {' '.join(f'{k}={v}' for k, v in args.p)}")
    print(f"cold cache: {cold:.1f} s (the run fills a {size:.1f} MiB cache)")
    print(f"warm cache: {warm:.1f} s")
    print(f"ratio cold/warm: {cold / warm:.1f}")


if __name__ == "__main__":
    main()
