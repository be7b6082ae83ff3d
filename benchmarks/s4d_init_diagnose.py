"""Why S4D-LegS starts slowly on ListOps at N = 32 (issue 7): the initial kernels and gradients of the ListOps CPU
model for S4 (DPLR LegS) and S4D with the LegS, Lin, Inv and Real inits, side by side, before any training.

    SSMKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/s4d_init_diagnose.py [N ...]

Per variant and state size N (default 32 and 64), one row:
- kernel: the layer alone (H = 64, bidirectional, Δ log-uniform in [1e-3, 1e-1], seed 0) at L = 2000: the RMS over
  channels of each kernel's l2 norm, and the share of its energy (sum of K_l^2) at lags l >= 100;
- modes: of S4D's modes (N/2 complex pairs; N real modes for Real), the one with the largest |B|, as |B| and
  |Im Λ| (S4's DPLR kernel: not applicable);
- gradient: the whole s4d_listops_cpu / s4_listops_cpu model (seed 0) on one batch of 32 training sequences (seed 1):
  the cross-entropy, the l2 norm of the whole gradient and the part of it in log Δ. Training clips the gradient's
  norm at 1.0 (train.grad_clip), so a norm above 1 is scaled down.

Reads ListOps from $SSMKIT_DATA_DIR (the loader names the missing files if it is not there).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from ssmkit.data.base import Task, pad_collate
from ssmkit.layers import S4, S4D
from ssmkit.train.build import build_model, build_task
from ssmkit.train.config import load_config

VARIANTS = (("s4", "legs"), ("s4d", "legs"), ("s4d", "lin"), ("s4d", "inv"), ("s4d", "real"))
H, L, TAIL = 64, 2000, 100


def kernel_stats(layer: str, init: str, N: int) -> tuple[float, float, str]:
    """RMS kernel norm, energy share at lags >= TAIL, and the largest-abs(B) mode of an S4D layer."""
    torch.manual_seed(0)
    cls = S4 if layer == "s4" else S4D
    m = cls(H, d_state=N, init=init, bidirectional=True)
    with torch.no_grad():
        K = m.kernel(L)  # (directions, channels, H, L)
    energy = K.pow(2).sum(-1)  # (directions, channels, H)
    norm = energy.mean().sqrt().item()  # RMS of the per-kernel l2 norms
    tail = (K[..., TAIL:].pow(2).sum(-1) / energy).mean().item()
    if layer == "s4":
        return norm, tail, "n/a (DPLR)"
    B, Lambda = m.B_complex()[0], m.Lambda()[0]  # (n,) complex: every channel starts from the same init
    if bool((B.abs() == B.abs()[0]).all()):
        return norm, tail, f"abs(B) = {B[0].abs().item():.1f} for all"
    k = int(B.abs().argmax())
    return norm, tail, f"abs(B) {B[k].abs().item():.1f} at abs(Im Λ) {Lambda[k].imag.abs().item():.1f}"


def gradient_stats(layer: str, init: str, N: int, task: Task) -> tuple[float, float, float]:
    """Loss, total gradient norm and the log Δ part of it, for the ListOps CPU model on one training batch."""
    cfg = load_config(f"{layer}_listops_cpu", [f"model.layer_options.init={init}", f"model.layer_options.d_state={N}"])
    torch.manual_seed(0)
    model = build_model(cfg, task)
    model.train()
    order = torch.randperm(len(task.train), generator=torch.Generator().manual_seed(1))[:32].tolist()
    x, y, lengths = pad_collate([task.train[i] for i in order])
    loss = F.cross_entropy(model(x, lengths), y)
    loss.backward()
    total = sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None).sqrt().item()
    dt = sum(p.grad.pow(2).sum() for n, p in model.named_parameters() if n.endswith("log_dt")).sqrt().item()
    return loss.item(), total, dt


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    sizes = [int(a) for a in argv] or [32, 64]
    task = build_task(load_config("s4d_listops_cpu"))  # the S4 and S4D configs share their task section
    columns = ["layer", "init", "N", "kernel norm", f"energy at lags >= {TAIL}", "largest-B mode", "loss", "grad norm"]
    print("| " + " | ".join(columns + ["log Δ part"]) + " |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|")
    for N in sizes:
        for layer, init in VARIANTS:
            norm, tail, mode = kernel_stats(layer, init, N)
            loss, total, dt = gradient_stats(layer, init, N, task)
            numbers = [f"{norm:.2f}", f"{tail:.0%}", mode, f"{loss:.3f}", f"{total:.3f}", f"{dt:.3f}"]
            cells = [layer.upper(), init, N] + numbers
            print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
