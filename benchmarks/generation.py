"""Tokens/s of the hf backend on the toy model: batched (KV cache, length-sorted batches) versus
one prompt at a time, in one process. Last line: `ratio batched/sequential: X` (goal X >= 10).

    python benchmarks/generation.py            # ~1-2 minutes on 2 CPU cores (after the toy build)
"""
from __future__ import annotations

import argparse
import time

import torch

from sclab.generate import Generator, SamplingParams
from sclab.models import load
from sclab.rollout import first_turn
from sclab.tasks import get_task


def tokens_per_s(gen: Generator, convs, params) -> tuple[float, int, float]:
    t0 = time.time()
    out = gen.generate(convs, params)
    dt = time.time() - t0
    toks = sum(c.tokens for row in out for c in row)
    return toks / dt, toks, dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy:arith")
    ap.add_argument("--prompts", type=int, default=256, help="prompts for the batched run")
    ap.add_argument("--sequential-prompts", type=int, default=32, help="prompts for the one-at-a-time run")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load(args.model)
    task = get_task("arith")
    convs = [first_turn(p, task) for p in task.problems(args.prompts, seed=123)]
    params = SamplingParams(temperature=1.0, max_new_tokens=160, seed=0)
    print(f"model {args.model}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"torch threads {torch.get_num_threads()}")
    # warm-up (allocator, kernels) so neither side pays it
    Generator(model, tok, cache=False, progress=False, batch_size=8).generate(convs[:8], params)
    seq = Generator(model, tok, cache=False, progress=False, batch_size=1)
    s_rate, s_tok, s_dt = tokens_per_s(seq, convs[:args.sequential_prompts], params)
    print(f"sequential (batch 1, KV cache):  {s_tok} tokens in {s_dt:.1f} s = {s_rate:,.0f} tokens/s")
    bat = Generator(model, tok, cache=False, progress=False, batch_size=args.batch_size)
    b_rate, b_tok, b_dt = tokens_per_s(bat, convs, params)
    print(f"batched (batch {args.batch_size}, KV cache): {b_tok} tokens in {b_dt:.1f} s = {b_rate:,.0f} tokens/s")
    print(f"ratio batched/sequential: {b_rate / s_rate:.1f}")


if __name__ == "__main__":
    main()
