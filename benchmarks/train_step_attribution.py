"""What each training-step change gave: the old and new pieces of ssmkit's S4D block, timed side by side.

    .venv/bin/python benchmarks/train_step_attribution.py [--d-model 128] [--threads 1] [--repeats 5]

Each piece is timed on the benchmark's activation size (B = 64, L = 784, H = d_model) in process CPU time (robust on
a shared machine), median of --repeats, old and new interleaved:

- convolution + GELU, forward and backward: ops.fftconv at git revision OLD_REV (autograd through torch.fft, time
  axis strided) against the current one (hand-written backward, contiguous time-last buffers, D folded into lag 0);
- the per-call input check: layers.base.check_sequence (elementwise isfinite) against
  layers.ssm_common.check_sequence_cheaply (one sum; the elementwise check only if that is not finite);
- dropout, forward and backward: elementwise nn.Dropout against the block's TiedDropout (one mask per sequence and
  channel, the reference example's choice).

Writes train_step_attribution.md next to this script.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ssmkit.layers.base import check_sequence
from ssmkit.layers.ssm_common import check_sequence_cheaply
from ssmkit.models.block import TiedDropout
from ssmkit.ops import fftconv as fftconv_new

OLD_REV = "e9096c6~1"  # the commit before the hand-written FFT backward
ROOT = Path(__file__).resolve().parent.parent


def old_fftconv():
    """ops.fftconv as it was at OLD_REV, loaded from git."""
    src = subprocess.run(
        ["git", "show", f"{OLD_REV}:src/ssmkit/ops/fftconv.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "fftconv_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("fftconv_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fftconv


def cpu_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, L, H = 64, 784, args.d_model
    u = torch.randn(B, L, H, requires_grad=True)  # (B, L, H)
    K = torch.randn(1, H, L, requires_grad=True)  # (channels, H, L)
    D = torch.randn(1, H, requires_grad=True)  # (channels, H)
    g = torch.randn(B, L, 1, H)
    x, gx = torch.randn(B, L, H), torch.randn(B, L, H)
    xr = x.clone().requires_grad_()
    conv_old = old_fftconv()

    def conv(impl):
        return lambda: F.gelu(impl(u, K, D)).backward(g)  # what the block does with the layer's output

    drop, tied = torch.nn.Dropout(0.1).train(), TiedDropout(0.1).train()
    pieces = [
        ("convolution + GELU, fwd + bwd (per layer)", conv(conv_old), conv(fftconv_new)),
        ("input check (per layer call)", lambda: check_sequence(x, H), lambda: check_sequence_cheaply(x, H)),
        ("dropout, fwd + bwd (per block)", lambda: drop(xr).backward(gx), lambda: tied(xr).backward(gx)),
    ]
    rows = []
    for name, before, after in pieces:
        a, b = [], []
        for _ in range(2):  # interleave old and new
            a.append(cpu_ms(before, args.repeats))
            b.append(cpu_ms(after, args.repeats))
        rows.append((name, min(a), min(b)))
        print(f"{name}: {min(a):.1f} ms -> {min(b):.1f} ms")
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    cmd = f"python benchmarks/train_step_attribution.py --d-model {H} --threads {args.threads} --repeats {args.repeats}"
    lines = [
        "# Training step: what each change gave (CPU ms, median, old vs new interleaved)",
        "",
        f"Command: `{cmd}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s), load average {load}. "
        f"Shapes: B = {B}, L = {L}, H = {H}. Old convolution = ops.fftconv at `{OLD_REV}`.",
        "",
        "| piece | before ms | after ms | ratio | per optimiser step (4 blocks) saved ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, a, b in rows:
        lines.append(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.1f}x | {4 * (a - b):.0f} |")
    (Path(__file__).resolve().parent / "train_step_attribution.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
