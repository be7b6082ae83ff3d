"""`ssmkit bench kernels`: the SSM convolution kernels, time and peak memory, fast (default) vs plain reference path.

Rows: kernel x path x L, forward and forward + backward. H = 256 channels, state size N = 64, float32 (complex64),
L = 2^10 .. 2^17 as far as the memory budget allows:

- dense (LSSL, Gu et al. 2021): `ssmkit.ssm.dense_kernel`, HiPPO-LegS A, bilinear. fast: factored Krylov
  (O(N √L) memory per channel); reference: the L-step loop (`krylov_reference`), which keeps every state.
- diag (S4D, Gu et al. 2022b): `ssmkit.ssm.diag_kernel`, S4D-LegS, ZOH. fast: factored Vandermonde; reference:
  materialised powers.
- dplr (S4, Gu et al. 2022, Algorithm 1): `ssmkit.ssm.dplr_kernel`, S4-LegS (rank 1), bilinear, C̃ computed inside.
  fast: chunked Cauchy with a recomputing backward; reference: the Cauchy matrix materialised (`cauchy_reference`).

Δ is log-spaced in [1e-3, 1e-1] over the channels; the backward pass is of (K ⊙ G).sum() for a fixed random G.

Each (kernel, path, L) runs in its own process (`ssmkit.bench.common`): it builds the inputs, measures the extra peak
memory of one forward, then of one forward + backward, then times each (median of --repeats). A cell is not run when
its memory or one call's time, extrapolated from the same path at smaller L (before any measurement: the size of the
tensors the reference materialises), exceeds --budget-gib / --budget-s; the table shows the estimate. The fast paths'
matrix-product flops are counted (`ssmkit.bench.flops`) and divided by the call's time: the last columns compare that
rate with the machine's float32 matmul peak measured at the start and end of the same run.
"""

from __future__ import annotations

import argparse
from typing import Any

from ssmkit.bench import common

KERNELS = ("dense", "diag", "dplr")
PATHS = ("fast", "reference")
LENGTHS = [2**k for k in range(10, 18)]
QUICK_LENGTHS = [128, 256]
H_DEFAULT, N_DEFAULT = 256, 64
H_QUICK, N_QUICK = 16, 16


def sizes_for(args: argparse.Namespace) -> tuple[int, int]:
    """(H, N) for this run: the issue's 256, 64, or 16, 16 with --quick."""
    return (H_QUICK, N_QUICK) if args.quick else (H_DEFAULT, N_DEFAULT)


def build(kernel: str, L: int, H: int, N: int, impl: str, device: str):
    """Inputs (leaf tensors requiring grad) and a closure computing the kernel K (H, L), float32 / complex64."""
    import torch

    from ssmkit import hippo, ssm

    torch.manual_seed(0)
    c64 = torch.complex64

    def leaf(t):
        return t.to(device).clone().requires_grad_(True)

    dt = leaf(torch.logspace(-3, -1, H))
    if kernel == "dense":
        A, B = hippo.transition("legs", N)
        A, B, C = leaf(A.float().expand(H, N, N)), leaf(B.float().expand(H, N)), leaf(torch.randn(H, N))
        return (A, B, C, dt), lambda: ssm.dense_kernel(A, B, C, dt, L, "bilinear", impl=impl)
    if kernel == "diag":
        A, B = hippo.diag_init("legs", N)
        A, B = leaf(A.to(c64).expand(H, -1)), leaf(B.to(c64).expand(H, -1))
        C = leaf(torch.randn(H, N // 2, dtype=c64))
        return (A, B, C, dt), lambda: ssm.diag_kernel(A, B, C, dt, L, "zoh", impl=impl)
    if kernel == "dplr":
        Lambda, P, B = hippo.dplr("legs", N)
        Lambda, B = leaf(Lambda.to(c64).expand(H, -1)), leaf(B.to(c64).expand(H, -1))
        P = leaf(P.to(c64).unsqueeze(1).expand(-1, H, -1))
        C = leaf(torch.randn(H, N // 2, dtype=c64))
        return (Lambda, P, B, C, dt), lambda: ssm.dplr_kernel(Lambda, P, B, C, dt, L, impl=impl)
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def kernel_cell(
    device: str, kernel: str, impl: str, L: int, H: int, N: int, repeats: int, backward: bool, count_flops: bool
) -> dict[str, Any]:
    """In the child: extra peak memory of one forward and one forward + backward, their median times, and (when
    `count_flops`) their matrix-product flops."""
    import torch

    params, kernel_fn = build(kernel, L, H, N, impl, device)
    G = torch.randn(H, L, device=device)

    def fwd() -> None:
        with torch.no_grad():
            kernel_fn()

    def fwd_bwd() -> None:
        torch.autograd.grad((kernel_fn() * G).sum(), params)

    memory = common.PeakMemory(device)
    out: dict[str, Any] = {}
    first = out["fwd_first_s"] = common.time_call(fwd, device)
    out["fwd_peak_mib"] = memory.peak_mib()
    out["fwd_s"] = common.median_time(fwd, first, repeats, device)
    if backward:
        first = out["bwd_first_s"] = common.time_call(fwd_bwd, device)
        out["bwd_peak_mib"] = memory.peak_mib()
        out["bwd_s"] = common.median_time(fwd_bwd, first, repeats, device)
    if count_flops:
        from ssmkit.bench.flops import count_matmul_flops

        out["fwd_flops"] = count_matmul_flops(fwd)
        if backward:
            out["bwd_flops"] = count_matmul_flops(fwd_bwd)
    return out


def kernel_cell_kwargs(
    args: argparse.Namespace, kernel: str, impl: str, L: int, backward: bool, count_flops: bool
) -> dict[str, Any]:
    H, N = sizes_for(args)
    return {"kernel": kernel, "impl": impl, "L": L, "H": H, "N": N, "repeats": 1 if args.quick else args.repeats,
            "backward": backward, "count_flops": count_flops}  # fmt: skip


def materialised_gib(kernel: str, L: int, H: int, N: int) -> float:
    """Size of the largest tensors the reference path materialises (forward): the estimate before any measurement."""
    if kernel == "dense":  # every state x_l (H, N) kept: (H, N, L) float32, twice (list + stack)
        return 2 * H * N * L * 4 / 2**30
    if kernel == "diag":  # powers (H, L, N/2) complex64, and their product with C B̄
        return 2 * H * L * (N // 2) * 8 / 2**30
    return 2 * 4 * H * (L // 2) * (N // 2) * 8 / 2**30  # (4, H, L/2, N/2) complex64 products, both conj halves


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=LENGTHS, help="kernel lengths L (default 2^10 .. 2^17)")
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    common.add_common_arguments(p, budget_gib=3.0, budget_s=30.0)


def run(args: argparse.Namespace) -> int:
    from ssmkit.bench.flops import PEAK_SIZES, QUICK_PEAK_SIZES, measure_peak

    device = common.resolve_device(args.device)
    H, N = sizes_for(args)
    lengths = QUICK_LENGTHS if args.quick else sorted(args.lengths)
    peak_sizes = QUICK_PEAK_SIZES if args.quick else PEAK_SIZES
    before = common.machine_record(device, args.threads)
    peaks = [measure_peak(args, device, peak_sizes)]
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    for kernel in args.kernels:
        for impl in PATHS:
            mem_pts: tuple[list, list] = ([], [])  # (L, fwd GiB), (L, fwd+bwd GiB) measured on this path
            time_pts: tuple[list, list] = ([], [])  # (L, s) of the first (untimed-median) call
            for L in lengths:
                res = measure_kernel_cell(args, device, kernel, impl, L, H, N, mem_pts, time_pts)
                results[(kernel, impl, L)] = res
                print(kernel, impl, L, {k: v for k, v in res.items() if k != "load"}, flush=True)
    peaks.append(measure_peak(args, device, peak_sizes))
    if any("error" in p for p in peaks):
        raise RuntimeError(f"matmul peak measurement failed: {peaks}")
    peak = max(p["peak_gflops"] for p in peaks)
    after = common.machine_record(device, args.threads)

    body = report_body(args, results, lengths, peaks, peak, H, N)
    path = common.write_report(
        args.out, "kernels", "SSM convolution kernels: fast vs reference path", common.command_line(args),
        common.machine_lines(before, after), body,
    )  # fmt: skip
    plot(args, results, lengths)
    print(f"wrote {path} and {args.out / 'kernels.png'}")
    return 0


def measure_kernel_cell(args, device, kernel, impl, L, H, N, mem_pts, time_pts) -> dict[str, Any]:
    """One cell: skip it (with the estimate) when over budget, else measure it and add it to the series' points."""
    est = {}
    if impl == "reference" and not mem_pts[0]:
        est["fwd_gib"] = materialised_gib(kernel, L, H, N)
        est["bwd_gib"] = 3 * est["fwd_gib"]  # autograd keeps the materialised tensors and their gradients
    if mem_pts[0]:
        est["fwd_gib"] = common.extrapolate(mem_pts[0], L)
        est["bwd_gib"] = common.extrapolate(mem_pts[1], L) if mem_pts[1] else None
    if time_pts[0]:
        est["fwd_s"] = common.extrapolate(time_pts[0], L)
        est["bwd_s"] = common.extrapolate(time_pts[1], L) if time_pts[1] else None
    skip_fwd = common.budget_reason(est.get("fwd_gib"), est.get("fwd_s"), args.budget_gib, args.budget_s)
    if skip_fwd:
        return {"skip_fwd": skip_fwd, "skip_bwd": skip_fwd}
    skip_bwd = common.budget_reason(est.get("bwd_gib"), est.get("bwd_s"), args.budget_gib, args.budget_s)
    kwargs = kernel_cell_kwargs(args, kernel, impl, L, backward=skip_bwd is None, count_flops=impl == "fast")
    res = common.measure("ssmkit.bench.kernels:kernel_cell", kwargs, threads=args.threads, device=device,
                         isolate=not args.quick)  # fmt: skip
    if skip_bwd:
        res["skip_bwd"] = skip_bwd
    if "fwd_peak_mib" in res:
        mem_pts[0].append((L, max(res["fwd_peak_mib"], 16.0) / 1024))  # below ~16 MiB: allocator noise
        time_pts[0].append((L, res["fwd_first_s"]))
    if "bwd_peak_mib" in res:
        mem_pts[1].append((L, max(res["bwd_peak_mib"], 16.0) / 1024))
        time_pts[1].append((L, res["bwd_first_s"]))
    return res


def _time_cell(res: dict[str, Any], phase: str) -> str:
    if f"{phase}_s" in res:
        return common.fmt_ms(res[f"{phase}_s"])
    return res.get(f"skip_{phase}") or res.get("error", "—")


def _mem_cell(res: dict[str, Any], phase: str) -> str:
    return f"{res[f'{phase}_peak_mib']:.0f}" if f"{phase}_peak_mib" in res else "—"


def _ratio(results, kernel, L, phase) -> float | None:
    ref, fast = results.get((kernel, "reference", L), {}), results.get((kernel, "fast", L), {})
    if f"{phase}_s" in ref and f"{phase}_s" in fast:
        return ref[f"{phase}_s"] / fast[f"{phase}_s"]
    return None


def _rate_cell(res: dict[str, Any], phase: str, peak: float) -> str:
    if f"{phase}_flops" not in res or f"{phase}_s" not in res:
        return ""
    rate = res[f"{phase}_flops"] / res[f"{phase}_s"] / 1e9
    return f"{rate:.2f} ({100 * rate / peak:.1f}%)"


def report_body(args, results, lengths, peaks, peak, H, N) -> list[str]:
    rows = []
    for (kernel, impl, L), res in results.items():
        fwd_ratio, bwd_ratio = _ratio(results, kernel, L, "fwd"), _ratio(results, kernel, L, "bwd")
        speed = " / ".join(f"{r:.1f}x" if r else "—" for r in (fwd_ratio, bwd_ratio)) if impl == "fast" else ""
        load = res.get("load")
        rows.append(
            [kernel, impl, L, _time_cell(res, "fwd"), _mem_cell(res, "fwd"), _time_cell(res, "bwd"),
             _mem_cell(res, "bwd"), speed if speed != "— / —" else "", _rate_cell(res, "fwd", peak),
             _rate_cell(res, "bwd", peak), f"{load[0]:.1f} / {load[1]:.1f}" if load else "—"]
        )  # fmt: skip
    headers = ["kernel", "path", "L", "fwd ms", "fwd peak MiB", "fwd+bwd ms", "fwd+bwd peak MiB",
               "speedup vs reference (fwd / fwd+bwd)", "fwd matmul GFLOP/s (% peak)",
               "fwd+bwd matmul GFLOP/s (% peak)", "load before / after"]  # fmt: skip
    runs_out = []
    for kernel in args.kernels:
        for impl in PATHS:
            cells = [(L, results[(kernel, impl, L)]) for L in lengths]
            measured = [L for L, res in cells if "bwd_s" in res]
            first_skip = next(((L, res) for L, res in cells if "skip_bwd" in res), None)
            line = f"- {kernel} {impl}: fwd+bwd measured at L = {', '.join(map(str, measured)) or 'none'}"
            if first_skip:
                line += f"; runs out at L = {first_skip[0]} ({first_skip[1]['skip_bwd']})"
            failed = [f"L = {L}: {res['error']}" for L, res in cells if "error" in res]
            runs_out.append(line + (f"; failed at {'; '.join(failed)}" if failed else ""))
    peak_line = ", ".join(f"{p['peak_gflops']:.1f}" for p in peaks)
    return [
        f"H = {H}, N = {N}, float32 / complex64. Times are medians of {args.repeats} calls in ms (fewer for slow "
        "calls: about 30 s of timing per cell; a call over 10 s is timed once). Peak MiB: extra memory at the peak "
        "over the inputs, one process per cell. Speedups are ratios measured in this run.",
        "",
        f"Matmul peak (float32, same run, same threads): {peak_line} GFLOP/s at start, end; the % columns use "
        f"{peak:.1f}. The GFLOP/s columns are the kernel's matrix-product flops (FlopCounterMode) over its whole "
        "call time (see `ssmkit bench flops`).",
        "",
        "## Where each path runs out (memory or time budget)",
        "",
        f"Budget: {args.budget_gib:g} GiB of extra memory and {args.budget_s:g} s per call (shared machine).",
        "",
        *runs_out,
        "",
        "## Table",
        "",
        common.markdown_table(headers, rows),
        "",
        "How it is measured: " + " ".join(__doc__.split("\n\n")[-1].split()),
    ]


def plot(args, results, lengths) -> None:
    time_series, mem_series = {}, {}
    for kernel in args.kernels:
        for impl in PATHS:
            rs = [results[(kernel, impl, L)] for L in lengths]
            time_series[f"{kernel} {impl}"] = (lengths, [r.get("bwd_s") for r in rs])
            mem_series[f"{kernel} {impl}"] = (lengths, [r.get("bwd_peak_mib") for r in rs])
    common.plot_panels(
        args.out / "kernels.png",
        [
            {"title": "kernel fwd+bwd time", "xlabel": "L", "ylabel": "seconds", "series": time_series},
            {"title": "kernel fwd+bwd peak extra memory", "xlabel": "L", "ylabel": "MiB", "series": mem_series},
        ],
    )
