"""`ssmkit stream <checkpoint>`: run a trained model as a recurrence, one token at a time, and check it against the
parallel pass (the convolution / scan view) on the same sequence; report the per-token latency.

Streaming outputs are the head's prediction for each prefix (models/sequence_model.py); the last one is compared
with the parallel output for the whole sequence, and for per-step heads every step is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import Tensor, nn

from ssmkit.data.base import DataMissingError
from ssmkit.layers.base import BidirectionalStepError


@torch.no_grad()
def stream_check(model: nn.Module, u: Tensor, chunk: int = 64) -> dict[str, float]:
    """u: one batch (B, L[, d_input]). Returns max |step - parallel| (and relative), the same for chunks, latencies."""
    model.eval()
    per_step = model.head_kind == "steps" or model.pool_mode == "none"
    model(u[:, : min(8, u.shape[1])])  # warm-up: first-call allocations stay out of the timings
    model.step(u[:, 0], model.initial_state(u.shape[0]))
    t0 = time.perf_counter()
    y = model(u)  # parallel
    t_parallel = time.perf_counter() - t0
    state = model.initial_state(u.shape[0])
    outs, times = [], []
    for t in range(u.shape[1]):
        t0 = time.perf_counter()
        y_t, state = model.step(u[:, t], state)
        times.append(time.perf_counter() - t0)
        outs.append(y_t)
    y_steps = torch.stack(outs, 1)
    state, chunks = model.initial_state(u.shape[0]), []
    for start in range(0, u.shape[1], chunk):
        y_c, state = model.step_chunk(u[:, start : start + chunk], state)
        chunks.append(y_c)
    y_chunks = torch.cat(chunks, 1)
    if per_step:
        y_steps, y_chunks = y_steps[:, -y.shape[1] :], y_chunks[:, -y.shape[1] :]
    else:
        y_steps, y_chunks = y_steps[:, -1], y_chunks[:, -1]
    scale = y.abs().max().clamp_min(1e-30).item()
    return {
        "length": u.shape[1],
        "max_abs_err_step": (y_steps - y).abs().max().item(),
        "rel_err_step": (y_steps - y).abs().max().item() / scale,
        "max_abs_err_chunk": (y_chunks - y).abs().max().item(),
        "rel_err_chunk": (y_chunks - y).abs().max().item() / scale,
        "latency_ms_median": 1e3 * statistics.median(times),
        "latency_ms_p90": 1e3 * sorted(times)[int(0.9 * (len(times) - 1))],
        "parallel_ms": 1e3 * t_parallel,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint .pt file or a run folder (uses checkpoints/last.pt)")
    p.add_argument("--index", type=int, default=0, help="which test item to stream (default 0)")
    p.add_argument("--length", type=int, default=None, help="stream only the first LENGTH steps")
    p.add_argument("--chunk", type=int, default=64, help="chunk size for the chunked check (default 64)")
    p.add_argument("--float64", action="store_true", help="run in float64 (agreement to ~1e-10 instead of ~1e-5)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the run's train.threads)")
    p.add_argument("--data-dir", metavar="DIR", help="where datasets live (default: the run's task.data_dir)")


def run(args: argparse.Namespace) -> int:
    from ssmkit.train.evaluate import load_run

    try:
        cfg, task, model, _ = load_run(args.checkpoint, data_dir=args.data_dir)
        u, _ = task.test[args.index]
    except (ValueError, DataMissingError, FileNotFoundError, IndexError) as e:
        print(f"ssmkit stream: error: {e}", file=sys.stderr)
        return 1
    if args.threads or cfg.train.threads:
        torch.set_num_threads(args.threads or cfg.train.threads)
    u = u[None, : args.length] if args.length else u[None]
    if args.float64:
        model = model.double()
        u = u.double() if u.is_floating_point() else u
    try:
        r = stream_check(model, u, args.chunk)
    except BidirectionalStepError as e:
        print(f"ssmkit stream: error: {e}", file=sys.stderr)
        return 1
    print(
        f"{cfg.experiment} ({cfg.model.layer}), test item {args.index}, {r['length']} steps, "
        f"{'float64' if args.float64 else 'float32'}, {torch.get_num_threads()} threads\n"
        f"  step by step vs parallel: max |diff| {r['max_abs_err_step']:.2e} (relative {r['rel_err_step']:.2e})\n"
        f"  chunks of {args.chunk} vs parallel: max |diff| {r['max_abs_err_chunk']:.2e} "
        f"(relative {r['rel_err_chunk']:.2e})\n"
        f"  per-token latency: median {r['latency_ms_median']:.3f} ms, p90 {r['latency_ms_p90']:.3f} ms "
        f"(parallel pass over the whole sequence: {r['parallel_ms']:.1f} ms)"
    )
    return 0
