"""Does splitting the training step's batch into micro-batches (gradient accumulation) make it faster on CPU?

    .venv/bin/python benchmarks/train_step_microbatch.py [--d-model 128] [--micro-batches 64 16 8] [--repeats 3]

The idea tested: the step's activations (B = 64, L = 784, H = 128: 25-51 MB per tensor) do not fit in cache, so every
elementwise pass reads and writes main memory; with micro-batches of b sequences, each forward + backward works on
b/64 of that, and the summed gradients (loss · b/64 per micro-batch) are the same as the full batch's, so the AdamW
step is unchanged. Each (model, micro-batch, allocator) runs in its own process (allocator state does not leak), one
thread, the models and step of ssmkit.bench.train_step; process CPU time, median of --repeats after 2 warm-up steps,
and minor page faults per step. "kept" = glibc told to keep freed memory (MALLOC_REUSE_ENV).

Writes train_step_microbatch.md next to this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ssmkit.bench.train_step import MALLOC_REUSE_ENV, build

B, L = 64, 784


def child(which: str, d_model: int, micro: int, repeats: int) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, opt = build(which, d_model)
    model.train()
    u, target = torch.randn(B, L, 1), torch.randint(0, 10, (B,))  # (B, L, 1), (B,)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        for i in range(0, B, micro):  # Σ over micro-batches of (sum of per-sequence losses) / B = the batch mean
            loss = F.cross_entropy(model(u[i : i + micro]), target[i : i + micro], reduction="sum") / B
            loss.backward()
        opt.step()

    for _ in range(2):
        step()
    cpu, faults = [], []
    for _ in range(repeats):
        f0, c0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
        step()
        cpu.append(time.process_time() - c0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"cpu_s": statistics.median(cpu), "faults": statistics.median(faults), "rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--micro-batches", type=int, nargs="+", default=[64, 16, 8])
    parser.add_argument("--models", nargs="+", default=["reference", "ssmkit"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "MICRO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child[0], args.d_model, int(args.child[1]), args.repeats)))
        return
    rows = []
    for alloc in ("default", "kept"):
        env = {**os.environ, **(MALLOC_REUSE_ENV if alloc == "kept" else {})}
        for which in args.models:
            for micro in args.micro_batches:
                cmd = [sys.executable, __file__, "--d-model", str(args.d_model), "--repeats", str(args.repeats)]
                out = subprocess.run(
                    cmd + ["--child", which, str(micro)], env=env, capture_output=True, text=True, check=True
                ).stdout
                r = json.loads(out.split("RESULT ", 1)[1])
                rows.append((alloc, which, micro, r))
                print(alloc, which, micro, r, flush=True)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    cmd = f"python benchmarks/train_step_microbatch.py --d-model {args.d_model} --micro-batches " + " ".join(
        map(str, args.micro_batches)
    )
    if args.models != parser.get_default("models"):
        cmd += " --models " + " ".join(args.models)
    lines = [
        "# Training step in micro-batches (gradient accumulation inside one optimiser step)",
        "",
        f"Command: `{cmd} --repeats {args.repeats}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread, load average {load} at the end. "
        f"B = {B}, L = {L}, H = {args.d_model}; CPU s per optimiser step (median of {args.repeats}).",
        "",
        "| allocator | model | micro-batch | CPU s/step | vs its full batch | page faults/step | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    full = {(a, w): r["cpu_s"] for a, w, m, r in rows if m == B}
    for alloc, which, micro, r in rows:
        base = full.get((alloc, which))
        ratio = f"{base / r['cpu_s']:.2f}x" if base else "-"
        lines.append(
            f"| {alloc} | {which} | {micro} | {r['cpu_s']:.3f} | {ratio} | {r['faults']:,.0f} | {r['rss_mib']:,.0f} |"
        )
    (Path(__file__).resolve().parent / "train_step_microbatch.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
