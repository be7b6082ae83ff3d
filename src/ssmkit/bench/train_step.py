"""Training-step benchmark: the sMNIST model of the S4 reference's example script against the same model in ssmkit.

The baseline (`ReferenceS4Model`) re-implements, plainly and only for this benchmark, the model that the reference
repository's example script trains on sequential MNIST (state-spaces/s4, `example.py` with its minimal S4D layer):

    x = Linear(1 -> H)(u)                                   (B, L, H), then transposed to (B, H, L)
    per block (4, post-norm):
        K[h, l] = 2 Re Σ_n C'_hn exp(Δ_h Λ_hn l)            the kernel, from an explicit (H, N/2, L) complex tensor
        y = irfft(rfft(u, 2L) · rfft(K, 2L))[:L] + D u      (B, H, L)  FFT convolution + skip
        y = Conv1d(H -> 2H, kernel 1)(Dropout_tied(GELU(y))), GLU over channels
        x = LayerNorm(x + Dropout1d(y))                     (LayerNorm over H via two transposes)
    mean over L -> Linear(H -> 10)

with S4D-Lin init (Λ_n = -1/2 + iπn), C' = C (exp(ΔΛ) - 1)/Λ (B = 1 folded into C), dropout 0.1 (tied over L, as the
reference's DropoutNd / Dropout1d), AdamW with the SSM parameters (Λ, Δ) at lr 0.001 and no weight decay, the rest
at lr 0.01, weight decay 0.01.

ssmkit's model is `SequenceModel(layer="s4d", init="lin", d_state=64, norm="layer", prenorm=False, ff="glu",
pool="mean", dropout=0.1)` with AdamW over `ssmkit.optim.param_groups`: the same architecture. (ssmkit's S4D keeps B as
a learned complex parameter, so it has 32·H more parameters per layer; both counts are reported.)

One optimiser step = zero_grad, forward, cross-entropy, backward, AdamW step, on a fixed random batch (B, 784, 1).
Each (model, d_model, threads) configuration runs in its own subprocess so thread settings and allocator state do not
leak between them; the table reports the median over repeats and the peak resident memory of that process.

Variants (`--models ssmkit-compile reference-bf16 ...`) run the same model and step two other ways: wrapped in
`torch.compile`, or with the forward under `torch.autocast(bfloat16)` (the backward follows the forward's dtypes).
They measure what those two well-known levers give on this machine; the bf16 rows are not the float32 model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ---- the baseline: the reference example's model, re-implemented plainly ---------------------------------------------


class ReferenceS4DKernel(nn.Module):
    """K[h, l] = 2 Re Σ_n C_hn (exp(Δ_h Λ_hn) - 1)/Λ_hn · exp(Δ_h Λ_hn l): materialises the (H, N/2, L) powers."""

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        H, n = d_model, d_state // 2
        self.log_dt = nn.Parameter(torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))  # (H,)
        self.C = nn.Parameter(torch.view_as_real(torch.randn(H, n, dtype=torch.cfloat)).clone())  # (H, n, 2)
        self.log_A_real = nn.Parameter(torch.full((H, n), math.log(0.5)))  # (H, n): Re Λ = -1/2 (S4D-Lin)
        self.A_imag = nn.Parameter(math.pi * torch.arange(n, dtype=torch.float32).expand(H, n).clone())  # Im Λ = πn
        for p in (self.log_dt, self.log_A_real, self.A_imag):
            p._optim = {"weight_decay": 0.0, "lr": 1e-3}  # the example's lr=min(0.001, args.lr)

    def forward(self, L: int) -> Tensor:  # -> (H, L) real
        dt = torch.exp(self.log_dt)  # (H,)
        C = torch.view_as_complex(self.C)  # (H, n)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H, n) complex
        dtA = A * dt[:, None]  # (H, n)
        powers = torch.exp(dtA[..., None] * torch.arange(L, device=A.device))  # (H, n, L) complex: Ā^l
        C = C * (torch.exp(dtA) - 1.0) / A  # (H, n): C B̄ with B = 1
        return 2 * torch.einsum("hn,hnl->hl", C, powers).real


class TiedDropout(nn.Module):
    """Dropout with one mask per (batch, channel), shared along L (the reference's DropoutNd): x (B, H, L)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.rand(x.shape[:2] + (1,), device=x.device) < 1 - self.p  # (B, H, 1)
        return x * mask / (1 - self.p)


class ReferenceS4D(nn.Module):
    """The reference's minimal S4D layer, transposed (B, H, L) -> (B, H, L): conv, skip, GELU, dropout, Conv1d + GLU."""

    def __init__(self, d_model: int, d_state: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.D = nn.Parameter(torch.randn(d_model))  # (H,)
        self.kernel = ReferenceS4DKernel(d_model, d_state)
        self.dropout = TiedDropout(dropout) if dropout > 0 else nn.Identity()
        self.output_linear = nn.Sequential(nn.Conv1d(d_model, 2 * d_model, kernel_size=1), nn.GLU(dim=-2))

    def forward(self, u: Tensor) -> Tensor:  # (B, H, L)
        L = u.shape[-1]
        k = self.kernel(L)  # (H, L)
        k_f = torch.fft.rfft(k, n=2 * L)  # (H, L+1) complex
        u_f = torch.fft.rfft(u, n=2 * L)  # (B, H, L+1) complex
        y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]  # (B, H, L)
        y = y + u * self.D[:, None]
        y = self.dropout(F.gelu(y))
        return self.output_linear(y)  # (B, H, L)


class ReferenceS4Model(nn.Module):
    """The example script's S4Model: encoder, n_layers post-norm residual S4D blocks, mean pooling, decoder."""

    def __init__(
        self, d_input: int = 1, d_output: int = 10, d_model: int = 128, n_layers: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = nn.Linear(d_input, d_model)
        self.layers = nn.ModuleList(ReferenceS4D(d_model, 64, dropout) for _ in range(n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))
        self.dropouts = nn.ModuleList(nn.Dropout1d(dropout) for _ in range(n_layers))
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, u: Tensor) -> Tensor:  # (B, L, d_input) -> (B, d_output)
        x = self.encoder(u).transpose(-1, -2)  # (B, H, L)
        for layer, norm, dropout in zip(self.layers, self.norms, self.dropouts, strict=True):
            x = x + dropout(layer(x))
            x = norm(x.transpose(-1, -2)).transpose(-1, -2)  # post-norm over H
        return self.decoder(x.mean(dim=-1))


def reference_optimizer(model: nn.Module, lr: float = 0.01, weight_decay: float = 0.01) -> torch.optim.Optimizer:
    """The example's optimiser: AdamW, plus one group per distinct `_optim` hint (SSM parameters: lr 1e-3, no wd)."""
    params = list(model.parameters())
    opt = torch.optim.AdamW([p for p in params if not hasattr(p, "_optim")], lr=lr, weight_decay=weight_decay)
    hinted = [p for p in params if hasattr(p, "_optim")]
    if hinted:
        opt.add_param_group({"params": hinted, **hinted[0]._optim})
    return opt


# ---- the same model in ssmkit -------------------------------------------------------------------------------------


def ssmkit_model(d_model: int, n_layers: int = 4, dropout: float = 0.1) -> nn.Module:
    from ssmkit.models import SequenceModel

    return SequenceModel(
        10,
        d_input=1,
        d_model=d_model,
        n_layers=n_layers,
        layer="s4d",
        layer_options={"d_state": 64, "init": "lin", "lr": 1e-3},
        norm="layer",
        prenorm=False,
        ff="glu",
        dropout=dropout,
        tie_dropout=True,
        pool="mean",
    )


def ssmkit_optimizer(model: nn.Module, lr: float = 0.01, weight_decay: float = 0.01) -> torch.optim.Optimizer:
    from ssmkit.optim import param_groups

    return torch.optim.AdamW(param_groups(model, lr, weight_decay), lr=lr)


class SkipOnly(nn.Module):
    """An SSM layer without its convolution: y = dropout(D x). Used only to measure what the rest of the step costs."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:
        return self.layer.dropout(x * self.layer.D[0])


MODELS = ("reference", "ssmkit")
# "ssmkit-noconv": ssmkit's model with every SSM convolution removed (the floor set by everything else in the step)
# "<model>-compile": the same model and step with the model wrapped in torch.compile (inductor, default mode)
# "<model>-bf16": the same step with the forward under torch.autocast(bfloat16): matrix products and convolutions in
#   bfloat16, FFTs in float32 (torch's CPU FFT has no bfloat16), other ops in their inputs' dtype, the loss in
#   float32. Numerics differ from the float32 step: these rows say what it costs, not that it is the same model
VARIANTS = ("compile", "bf16")
ALL_MODELS = MODELS + ("ssmkit-noconv",) + tuple(f"{m}-{v}" for m in MODELS for v in VARIANTS)


def split_variant(which: str) -> tuple[str, str | None]:
    """'ssmkit-bf16' -> ('ssmkit', 'bf16'); 'ssmkit' -> ('ssmkit', None); 'ssmkit-noconv' is a model of its own."""
    base, _, variant = which.rpartition("-")
    return (base, variant) if variant in VARIANTS else (which, None)


def build(which: str, d_model: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    which, _ = split_variant(which)  # the variants change how the step runs (time_steps), not the model
    if which == "reference":
        model = ReferenceS4Model(d_model=d_model)
        return model, reference_optimizer(model)
    if which in ("ssmkit", "ssmkit-noconv"):
        model = ssmkit_model(d_model)
        if which == "ssmkit-noconv":
            for block in model.blocks:
                block.layer = SkipOnly(block.layer)
        return model, ssmkit_optimizer(model)
    raise ValueError(f"model must be one of {ALL_MODELS}, got {which!r}")


def glu_matmul_seconds(
    d_model: int, batch: int, length: int, n_layers: int = 4, repeats: int = 3
) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of the GLU linears' matrix products in one step: per layer (B·L, H) @ (H, 2H)
    forward and the two backward products, for n_layers layers. Both models run exactly these products (same shapes,
    same float32 flops), so reference step / this is the largest ratio any float32 implementation of the model could
    reach with torch's matrix multiply on this machine, even if everything else in its step were free."""
    H, N = d_model, batch * length
    x, W, g = torch.randn(N, H), torch.randn(2 * H, H), torch.randn(N, 2 * H)  # (BL, H), (2H, H), (BL, 2H)

    def products() -> None:
        for _ in range(n_layers):
            x @ W.t(), g @ W, g.t() @ x  # forward, d/dx, d/dW

    products()
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        products()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu_times)


# ---- timing -------------------------------------------------------------------------------------------------------


def time_steps(
    which: str, d_model: int, batch: int, length: int, warmup: int, repeats: int, device: str = "cpu"
) -> dict[str, Any]:
    """Median seconds per optimiser step (zero_grad, forward, loss, backward, AdamW step) in this process."""
    torch.manual_seed(0)
    base, variant = split_variant(which)
    model, _ = build(which, d_model)
    model = model.to(device)
    opt = (reference_optimizer if base == "reference" else ssmkit_optimizer)(model)  # over the moved parameters
    model.train()
    forward = torch.compile(model) if variant == "compile" else model  # compiles on the first (warm-up) step
    u = torch.randn(batch, length, 1, device=device)  # (B, L, 1): one pixel per step
    target = torch.randint(0, 10, (batch,), device=device)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=variant == "bf16"):
            logits = forward(u)
        loss = F.cross_entropy(logits.float(), target)
        loss.backward()
        opt.step()
        return loss.item()  # waits for the device

    for _ in range(warmup):
        step()
    times, cpu_times, faults = [], [], []
    for _ in range(repeats):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return {
        "model": which,
        "d_model": d_model,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "cpu_s": cpu_times,
        # minor page faults: the first touch of each fresh 4 KiB page of a newly mapped tensor (a count that, unlike
        # time, other processes on the machine do not change)
        "page_faults": faults,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_device_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "device": device,
        **_glu_matmul_fields(which, d_model, batch, length, device),
    }


def _glu_matmul_fields(which: str, d_model: int, batch: int, length: int, device: str) -> dict[str, float | None]:
    """The GLU matmuls' times, measured in the ssmkit-noconv process on CPU (the floor rows); None elsewhere."""
    if which != "ssmkit-noconv" or device != "cpu":
        return {"glu_matmul_s": None, "glu_matmul_cpu_s": None}
    wall, cpu = glu_matmul_seconds(d_model, batch, length)
    return {"glu_matmul_s": wall, "glu_matmul_cpu_s": cpu}


# glibc returns every large block (> 32 MiB at most) to the system when freed, so each fresh large tensor is paid again
# in page faults; these settings keep freed memory for reuse (same for both models)
MALLOC_REUSE_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def _child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads[0])
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    result = time_steps(args.model, args.d_model, args.batch, args.length, args.warmup, args.repeats, device)
    print("RESULT " + json.dumps(result))


def _run_child(which: str, d_model: int, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "ssmkit.bench.train_step", "--child", "--model", which, "--d-model", str(d_model)]
    cmd += ["--threads", str(threads), "--batch", str(args.batch), "--length", str(args.length)]
    cmd += ["--warmup", str(args.warmup), "--repeats", str(args.repeats), "--device", args.device]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if args.malloc_reuse:
        env.update(MALLOC_REUSE_ENV)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


# ---- report -------------------------------------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def write_report(rows: list[dict[str, Any]], args: argparse.Namespace, loads: tuple[str, str], command: str) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m = _machine()
    by = {(r["model"], r["d_model"], r["threads"]): r for r in rows}
    lines = [
        "# Training step: the S4 reference example's sMNIST model vs the same model in ssmkit",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} CPUs; device {rows[0]['device']}; torch {m['torch']}, "
        f"Python {m['python']}; "
        f"load average (1, 5, 15 min) at start {loads[0]}, at end {loads[1]}.",
        "",
        f"One AdamW step (zero_grad, forward, cross-entropy, backward, step) on a random batch of {args.batch} "
        f"sequences of length {args.length}, 4 post-norm LayerNorm S4D blocks (N = 64, GLU, dropout 0.1), mean "
        f"pooling. {args.rounds} processes per row, alternating reference and ssmkit, each timing {args.repeats} "
        f"steps after {args.warmup} warm-up steps; s/step = median wall-clock time over all of them, CPU s = median "
        "process CPU time (less sensitive to other processes on a shared machine); peak = the largest peak resident "
        "memory of the row's processes. Ratio = reference / ssmkit, both measured in this run."
        + (
            f" Both models ran with glibc's allocator told to keep freed memory ({MALLOC_REUSE_ENV})."
            if args.malloc_reuse
            else " Default allocator settings."
        ),
        "",
        "| d_model | threads | params ref / ssmkit | reference s/step | ssmkit s/step | ratio (wall) "
        "| reference CPU s | ssmkit CPU s | ratio (CPU) | peak MiB ref / ssmkit | page faults/step ref / ssmkit |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in args.d_models:
        for t in args.threads:
            ref, ours = by.get(("reference", d, t)), by.get(("ssmkit", d, t))
            if ref is None or ours is None:
                continue
            lines.append(
                f"| {d} | {t} | {ref['params']:,} / {ours['params']:,} | {ref['median_s']:.3f} | "
                f"{ours['median_s']:.3f} | **{ref['median_s'] / ours['median_s']:.2f}x** | "
                f"{ref['median_cpu_s']:.3f} | {ours['median_cpu_s']:.3f} | "
                f"{ref['median_cpu_s'] / ours['median_cpu_s']:.2f}x | "
                f"{ref['peak_rss_mib']:.0f} / {ours['peak_rss_mib']:.0f} | {_faults(ref)} / {_faults(ours)} |"
            )
    floors = [r for r in rows if r["model"] == "ssmkit-noconv"]
    if floors:
        lines += [
            "",
            "What bounds the ratio: ssmkit's step with every SSM convolution removed (the layer returns D x), and the "
            "GLU linears' matrix products alone (12 per step), against the reference's step.",
            "",
            "| d_model | threads | ssmkit without convolutions s/step | CPU s | reference / that (wall) | (CPU) "
            "| GLU matmuls s/step | CPU s | reference / GLU matmuls (CPU): the ceiling |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in floors:
            ref = by.get(("reference", r["d_model"], r["threads"]))
            rw, rc = _speedups(ref, r)
            mm_wall, mm_cpu = r.get("glu_matmul_s"), r.get("glu_matmul_cpu_s")
            ceiling = f"{ref['median_cpu_s'] / mm_cpu:.2f}x" if ref is not None and mm_cpu else "n/a"
            lines.append(
                f"| {r['d_model']} | {r['threads']} | {r['median_s']:.3f} | {r['median_cpu_s']:.3f} | {rw} | {rc} | "
                f"{_seconds(mm_wall)} | {_seconds(mm_cpu)} | {ceiling} |"
            )
    variants = [r for r in rows if split_variant(r["model"])[1] is not None]
    if variants:
        lines += [
            "",
            "Variants of the same step (see the module docstring of ssmkit.bench.train_step): torch.compile, and "
            "bfloat16 autocast. Ratios are against the plain float32 reference step of this run. Page faults: "
            "minor faults per step (first touches of freshly mapped memory).",
            "",
            "| d_model | threads | model | s/step | CPU s | reference / that (wall) | (CPU) | peak MiB | faults/step |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in variants:
            rw, rc = _speedups(by.get(("reference", r["d_model"], r["threads"])), r)
            lines.append(
                f"| {r['d_model']} | {r['threads']} | {r['model']} | {r['median_s']:.3f} | {r['median_cpu_s']:.3f} "
                f"| {rw} | {rc} | {r['peak_rss_mib']:.0f} | {_faults(r)} |"
            )
    lines += ["", "Per-step times (s):", ""]
    for r in rows:
        times = ", ".join(f"{x:.3f}" for x in r["times_s"])
        cpu = ", ".join(f"{x:.3f}" for x in r["cpu_s"])
        lines.append(f"- {r['model']}, d_model {r['d_model']}, {r['threads']} thread(s): wall {times}; CPU {cpu}")
    stem = args.name or ("train_step_malloc" if args.malloc_reuse else "train_step")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.json").write_text(json.dumps({"machine": m, "command": command, "rows": rows}, indent=1))
    _plot(rows, args, out / f"{stem}.png")


def _speedups(ref: dict[str, Any] | None, row: dict[str, Any]) -> tuple[str, str]:
    """The reference's median time over the row's, wall-clock and CPU, as table cells ("n/a" without a reference)."""
    if ref is None:
        return "n/a", "n/a"
    return f"{ref['median_s'] / row['median_s']:.2f}x", f"{ref['median_cpu_s'] / row['median_cpu_s']:.2f}x"


def _seconds(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _faults(row: dict[str, Any]) -> str:
    faults = row.get("page_faults")
    return f"{statistics.median(faults):,.0f}" if faults else "n/a"


def _plot(rows: list[dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"H={d}\n{t} thr" for d in args.d_models for t in args.threads]
    models = list(dict.fromkeys(r["model"] for r in rows))  # every model and variant measured, in run order
    width = 0.8 / len(models)
    for ax, key, what in zip(axes, ("median_s", "median_cpu_s"), ("wall-clock", "process CPU"), strict=True):
        for i, which in enumerate(models):
            by = {(r["d_model"], r["threads"]): r[key] for r in rows if r["model"] == which}
            vals = [by.get((d, t), float("nan")) for d in args.d_models for t in args.threads]
            offset = (i - (len(models) - 1) / 2) * width
            ax.bar([j + offset for j in range(len(labels))], vals, width, label=which)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel(f"{what} seconds per AdamW step (median)")
        ax.legend()
    fig.suptitle(f"sMNIST training step, batch {args.batch}, L = {args.length}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- command line -------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--d-models", type=int, nargs="+", default=[128, 256], help="model widths H")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=784)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per configuration, alternating the models")
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=ALL_MODELS,
        help="ssmkit-noconv: ssmkit without its SSM convolutions, and the GLU matmuls alone (what bounds the ratio); "
        "<model>-compile: the model under torch.compile; <model>-bf16: the forward under bfloat16 autocast",
    )
    parser.add_argument("--name", default=None, help="output file stem (default train_step[_malloc])")
    parser.add_argument("--out", default="benchmarks", help="folder for train_step.md / .json / .png")
    parser.add_argument(
        "--malloc-reuse",
        action="store_true",
        help="run both models with glibc keeping freed memory (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_); "
        "results go to train_step_malloc.*",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA when present")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (H=32, B=4, L=64, one step): a quick check")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="ssmkit", help=argparse.SUPPRESS)
    parser.add_argument("--d-model", type=int, default=128, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.child:
        _child(args)
        return 0
    if args.quick:
        args.d_models, args.threads, args.batch, args.length = [32], args.threads[:1], 4, 64
        args.warmup, args.repeats, args.rounds = 1, 1, 1
    command = _command(args)
    start = _load()
    rows = []
    for d in args.d_models:
        for t in args.threads:
            runs: dict[str, list[dict[str, Any]]] = {which: [] for which in args.models}
            for _ in range(args.rounds):  # alternate the models, process by process, so drifts in load hit both
                for which in args.models:
                    r = _run_child(which, d, t, args)
                    print(f"{which:9s} d_model={d} threads={t}: {r['median_s']:.3f} s/step ({r['params']:,} params)")
                    runs[which].append(r)
            rows += [_merge(rs) for rs in runs.values()]
    write_report(rows, args, (start, _load()), command)
    return 0


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from the rounds of one configuration: medians over all their timed steps, the largest peak."""
    row = dict(runs[0])
    for key in ("glu_matmul_s", "glu_matmul_cpu_s"):
        values = [r[key] for r in runs if r.get(key) is not None]
        row[key] = statistics.median(values) if values else None
    row["times_s"] = [x for r in runs for x in r["times_s"]]
    row["cpu_s"] = [x for r in runs for x in r["cpu_s"]]
    row["page_faults"] = [x for r in runs for x in r.get("page_faults", [])]
    row["median_s"] = statistics.median(row["times_s"])
    row["median_cpu_s"] = statistics.median(row["cpu_s"])
    row["min_s"] = min(row["times_s"])
    row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    return row


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m ssmkit.bench.train_step", "--d-models", *map(str, args.d_models)]
    parts += ["--threads", *map(str, args.threads), "--batch", str(args.batch), "--length", str(args.length)]
    parts += ["--warmup", str(args.warmup), "--repeats", str(args.repeats), "--rounds", str(args.rounds)]
    parts += ["--out", str(args.out)] + (["--malloc-reuse"] if args.malloc_reuse else [])
    parts += [] if args.device == "auto" else ["--device", args.device]
    parts += (["--models", *args.models] if list(args.models) != list(MODELS) else []) + (
        ["--name", args.name] if args.name else []
    )
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
