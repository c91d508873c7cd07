"""Time to grade HumanEval in the sandbox: the 164 canonical solutions one sandbox at a time,
then on a small worker pool, and a stub (the prompt alone) that must pass none. Last line:
`ratio sequential/pool: X`.

    SCLAB_DATA_DIR=../shared/data python benchmarks/sandbox_humaneval.py    # ~30 s on 2 CPU cores
"""
from __future__ import annotations

import argparse
import os
import time

from sclab.sandbox import Limits, interpreter
from sclab.tasks import get_task


def timed(task, problems, texts):
    t0 = time.perf_counter()
    grades = task.grade_many(problems, texts)
    return time.perf_counter() - t0, grades


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="sandboxes at a time for the pool run")
    ap.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds per program")
    args = ap.parse_args()
    limits = Limits(timeout=args.timeout)
    seq_task = get_task("humaneval", limits=limits)
    pool_task = get_task("humaneval", limits=limits, workers=args.workers)
    problems = seq_task.problems()
    canonical = [p.meta["solution"] for p in problems]
    stub = ["    pass\n" for _ in problems]  # the prompt's stub alone: returns None
    exe, _ = interpreter()
    print(f"{len(problems)} HumanEval problems from {seq_task.source}; programs run with {exe} "
          f"as uid {os.geteuid() == 0 and 65534 or os.getuid()}, {os.cpu_count()} CPUs")

    seq_s, seq = timed(seq_task, problems, canonical)
    pool_s, pool = timed(pool_task, problems, canonical)
    stub_s, stubbed = timed(pool_task, problems, stub)
    for name, grades in (("sequential", seq), (f"pool of {args.workers}", pool)):
        failed = [(p.id, g.why) for p, g in zip(problems, grades) if not g.correct]
        print(f"canonical, {name}: {sum(g.correct for g in grades)}/{len(grades)} pass" + (f"; failing: {failed}" if failed else ""))
    print(f"stub: {sum(g.correct for g in stubbed)}/{len(stubbed)} pass"
          + (f" ({[p.id for p, g in zip(problems, stubbed) if g.correct]})" if any(g.correct for g in stubbed) else ""))
    print(f"sequential: {seq_s:.1f} s ({1000 * seq_s / len(problems):.0f} ms a program); pool of {args.workers}: "
          f"{pool_s:.1f} s ({1000 * pool_s / len(problems):.0f} ms a program); stub on the pool: {stub_s:.1f} s")
    print(f"ratio sequential/pool: {seq_s / pool_s:.2f}")


if __name__ == "__main__":
    main()
