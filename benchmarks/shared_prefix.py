"""Sharing a prefix's prefill: the line beam's expansions (m samples of one prefix) with and without
`generate_rows(share=m)`, in one process on the shipped toy model.

Each of P held-out toy prompts, extended by the gold solution's first k lines (a beam prefix), is
continued m times up to its next line (`delimiters=`), once with share=1 (every row prefilled on
its own) and once with share=m (each prefix prefilled once, its KV cache repeated m times). The
samples must be identical (checked); the figures are wall times, best of `--repeats`. Last line:
`ratio unshared/shared: X`.

    python benchmarks/shared_prefix.py                 # ~1 minute on 2 CPU cores
    python benchmarks/shared_prefix.py --problems 400 --expand 8 --lines 6
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--expand", type=int, default=4, help="samples per prefix (m)")
    ap.add_argument("--lines", type=int, default=4, help="gold lines in each prefix (a longer prefix: more to share)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from sclab.generate import SamplingParams, row_seed
    from sclab.generate.hf import HFBackend
    from sclab.models import load
    from sclab.rollout import first_turn
    from sclab.sharpening.search import delimiter_counts
    from sclab.tasks import get_task

    model, tok = load("toy:arith")
    task = get_task("arith")
    backend = HFBackend(model, tok, batch_size=256)
    counts = delimiter_counts(tok, ";", model.get_input_embeddings().num_embeddings)
    reqs = []
    for p in task.problems(args.problems, seed=5):
        head = " ; ".join(p.meta["solution"].split(" ; ")[: args.lines]) + " ;"
        ids = backend.encode(first_turn(p, task)) + tok(" " + head, add_special_tokens=False)["input_ids"]
        reqs += [(ids, row_seed(0, ids, j)) for j in range(args.expand)]
    params = SamplingParams(temperature=1.0, max_new_tokens=16)
    prefix = sum(len(ids) for ids, _ in reqs) / len(reqs)
    print(f"{args.problems} prefixes x {args.expand} samples, {prefix:.1f} prompt tokens a row, one line each")

    times, outs = {}, {}
    for share in (1, args.expand):
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            outs[share] = backend.generate_rows(reqs, params, progress=False, delimiters=(counts, 1), share=share)
            best = min(best, time.perf_counter() - t0)
        times[share] = best
        print(f"share={share}: {best:.2f} s ({len(reqs) / best:.0f} rows/s)")
    same = all(a.token_ids == b.token_ids for a, b in zip(outs[1], outs[args.expand]))
    print(f"identical samples: {same}")
    if not same:
        raise SystemExit("share= changed the samples")
    print(f"ratio unshared/shared: {times[1] / times[args.expand]:.2f}")


if __name__ == "__main__":
    main()
