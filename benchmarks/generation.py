"""Tokens/s of the hf backend on the toy model: batched (KV cache, length-sorted batches) versus
one prompt at a time, in one process, then teacher-forced scoring of the batched samples.
Last line: `ratio batched/sequential: X` (goal X >= 10).

    python benchmarks/generation.py            # ~1-2 minutes on 2 CPU cores (after the toy build)
    python benchmarks/generation.py --model toy:arith-tiny --device cuda --json $OUT/generation.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from sclab.generate import Generator, SamplingParams
from sclab.models import load
from sclab.tasks import get_task


def tokens_per_s(gen: Generator, convs, params) -> tuple[float, int, float, list]:
    t0 = time.time()
    out = gen.generate(convs, params)
    dt = time.time() - t0
    toks = sum(c.tokens for row in out for c in row)
    return toks / dt, toks, dt, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy:arith")
    ap.add_argument("--prompts", type=int, default=256, help="prompts for the batched run")
    ap.add_argument("--sequential-prompts", type=int, default=32, help="prompts for the one-at-a-time run")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda where available)")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                    help="auto: bf16 on CUDA, fp32 on CPU")
    default_json = str(Path(os.environ["OUT"]) / "generation.json") if os.environ.get("OUT") else None
    ap.add_argument("--json", default=default_json, help="also write the numbers here (default $OUT/generation.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load(args.model, dtype=args.dtype, device=args.device)
    task = get_task("arith")
    # sclab.rollout.first_turn, written out: the benchmark runs where pandas is missing (a bare GPU machine)
    convs = [[{"role": "user", "content": task.prompt(p)}] for p in task.problems(args.prompts, seed=123)]
    params = SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    device = str(model.device)
    gpu = torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else None
    print(f"model {args.model}: {sum(p.numel() for p in model.parameters()):,} parameters, {model.dtype} on "
          f"{gpu or device}, torch threads {torch.get_num_threads()}")
    # warm-up (allocator, kernels) so neither side pays it
    Generator(model, tok, cache=False, progress=False, batch_size=8).generate(convs[:8], params)
    seq = Generator(model, tok, cache=False, progress=False, batch_size=1)
    s_rate, s_tok, s_dt, _ = tokens_per_s(seq, convs[:args.sequential_prompts], params)
    print(f"sequential (batch 1, KV cache):  {s_tok} tokens in {s_dt:.1f} s = {s_rate:,.0f} tokens/s")
    bat = Generator(model, tok, cache=False, progress=False, batch_size=args.batch_size)
    b_rate, b_tok, b_dt, out = tokens_per_s(bat, convs, params)
    print(f"batched (batch {args.batch_size}, KV cache): {b_tok} tokens in {b_dt:.1f} s = {b_rate:,.0f} tokens/s")
    t0 = time.time()
    bat.score(convs, [row[0] for row in out])
    sc_dt = time.time() - t0
    print(f"scoring (batch {args.batch_size}, teacher-forced): {b_tok} tokens in {sc_dt:.2f} s = "
          f"{b_tok / sc_dt:,.0f} tokens/s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "model": args.model, "dtype": str(model.dtype), "device": device, "gpu": gpu,
            "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
            "sequential": {"prompts": args.sequential_prompts, "tokens": s_tok, "seconds": s_dt, "tokens_per_s": s_rate},
            "batched": {"prompts": args.prompts, "tokens": b_tok, "seconds": b_dt, "tokens_per_s": b_rate},
            "scoring": {"tokens": b_tok, "seconds": sc_dt, "tokens_per_s": b_tok / sc_dt},
            "ratio_batched_sequential": b_rate / s_rate}, indent=1))
    print(f"ratio batched/sequential: {b_rate / s_rate:.1f}")


if __name__ == "__main__":
    main()
