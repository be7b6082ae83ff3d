"""`ssmkit bench flops`: the machine's own limit, float32 matrix-multiply FLOP/s, and how close the SSM kernels get.

Peak: C = A @ B for square float32 n×n matrices, 2 n³ flops per product, the median time over repeats, at the run's
thread count, in its own process; the peak is the best size. It is measured at the start and at the end of the run
(the machine is shared: the two bracket the load the kernels saw).

Kernels: the fast path of each SSM kernel (S4 / DPLR, S4D / diagonal, LSSL / dense; `ssmkit.bench.kernels`) counts
its matrix-product flops with `torch.utils.flop_counter.FlopCounterMode` (mm, bmm, baddbmm and friends: 2·m·n·k each,
in the forward and in the backward) once, then is timed as in the kernels benchmark. "Achieved" is those matmul flops
divided by the whole call's wall time, so it is a lower bound on the rate of the matmuls themselves (the call also
does elementwise work: the Cauchy reciprocals, powers, FFTs) and the fraction of peak says how much of the call's time
the machine's best operation could account for.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

from ssmkit.bench import common

PEAK_SIZES = (256, 512, 1024, 2048)
QUICK_PEAK_SIZES = (128, 256)


def matmul_cell(device: str, sizes: list[int], repeats: int) -> dict[str, Any]:
    """In the child: GFLOP/s of float32 n×n @ n×n for each n (median of `repeats` timed products after a warm-up)."""
    import torch

    out: dict[str, Any] = {"gflops": {}}
    for n in sizes:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        first = common.time_call(lambda a=a, b=b: a @ b, device)
        # enough products for ~0.2 s of timing per repeat: small sizes are timed in batches
        k = max(1, int(0.2 / max(first, 1e-6)))

        def many(a=a, b=b, k=k) -> None:
            for _ in range(k):
                a @ b

        t = statistics.median(common.time_call(many, device) / k for _ in range(max(1, repeats)))
        out["gflops"][str(n)] = 2 * n**3 / t / 1e9
    out["peak_gflops"] = max(out["gflops"].values())
    return out


def count_matmul_flops(fn: Callable[[], Any]) -> int:
    """Matrix-product flops of one call of fn (forward and whatever backward fn runs), by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    mode = FlopCounterMode(display=False)
    with mode:
        fn()
    return int(mode.get_total_flops())


def measure_peak(args: argparse.Namespace, device: str, sizes: tuple[int, ...]) -> dict[str, Any]:
    return common.measure(
        "ssmkit.bench.flops:matmul_cell",
        {"sizes": list(sizes), "repeats": args.repeats},
        threads=args.threads,
        device=device,
        isolate=not args.quick,
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=[2**12, 2**14, 2**16], help="kernel lengths L")
    common.add_common_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ssmkit.bench.kernels import KERNELS, kernel_cell_kwargs

    device = common.resolve_device(args.device)
    before = common.machine_record(device, args.threads)
    sizes = QUICK_PEAK_SIZES if args.quick else PEAK_SIZES
    lengths = [128, 256] if args.quick else sorted(args.lengths)
    peaks = [measure_peak(args, device, sizes)]
    rows, achieved = [], {}
    for kernel in KERNELS:
        for L in lengths:
            kw = kernel_cell_kwargs(args, kernel, "fast", L, backward=True, count_flops=True)
            res = common.measure("ssmkit.bench.kernels:kernel_cell", kw, threads=args.threads, device=device,
                                 isolate=not args.quick)  # fmt: skip
            achieved[(kernel, L)] = res
            print(kernel, L, {k: v for k, v in res.items() if k != "load"}, flush=True)
    peaks.append(measure_peak(args, device, sizes))
    if any("error" in p for p in peaks):
        raise RuntimeError(f"matmul peak measurement failed: {peaks}")
    peak = max(p["peak_gflops"] for p in peaks)

    peak_rows = [
        [n, f"{peaks[0]['gflops'][str(n)]:.1f}", f"{peaks[1]['gflops'][str(n)]:.1f}"] for n in sizes
    ]  # fmt: skip
    for (kernel, L), res in achieved.items():
        if "error" in res:
            rows.append([kernel, L, res["error"], "", "", "", "", "", ""])
            continue
        fwd_rate = res["fwd_flops"] / res["fwd_s"] / 1e9
        bwd_rate = res["bwd_flops"] / res["bwd_s"] / 1e9
        rows.append(
            [kernel, L, f"{res['fwd_flops'] / 1e9:.3g}", common.fmt_ms(res["fwd_s"]), f"{fwd_rate:.2f}",
             f"{100 * fwd_rate / peak:.1f}%", f"{res['bwd_flops'] / 1e9:.3g}", common.fmt_ms(res["bwd_s"]),
             f"{bwd_rate:.2f} ({100 * bwd_rate / peak:.1f}%)"]
        )  # fmt: skip
    body = [
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        f"Kernels at H = {args_H(args)}, N = {args_N(args)}, float32 / complex64. "
        f"Peak used below: **{peak:.1f} GFLOP/s** (best of the two peak runs).",
        "",
        "## Matrix-multiply GFLOP/s (float32, n×n @ n×n)",
        "",
        common.markdown_table(["n", "GFLOP/s at start", "GFLOP/s at end"], peak_rows),
        "",
        "## SSM kernels' fast paths: matmul flops per call and the rate they reach",
        "",
        common.markdown_table(
            [
                "kernel",
                "L",
                "fwd matmul GFLOP",
                "fwd ms",
                "fwd GFLOP/s",
                "fwd % of peak",
                "fwd+bwd matmul GFLOP",
                "fwd+bwd ms",
                "fwd+bwd GFLOP/s (% of peak)",
            ],
            rows,
        ),  # fmt: skip
    ]
    after = common.machine_record(device, args.threads)
    path = common.write_report(
        args.out, "flops", "Matrix-multiply peak and the SSM kernels' share of it", common.command_line(args),
        common.machine_lines(before, after), body,
    )  # fmt: skip
    series = {}
    for kernel in KERNELS:
        ys = []
        for L in lengths:
            res = achieved[(kernel, L)]
            ys.append(None if "error" in res else 100 * res["bwd_flops"] / res["bwd_s"] / 1e9 / peak)
        series[f"{kernel} fwd+bwd"] = (lengths, ys)
    common.plot_panels(
        args.out / "flops.png",
        [
            {"title": "float32 matmul n×n", "xlabel": "n", "ylabel": "GFLOP/s",
             "series": {"start": (list(sizes), [peaks[0]["gflops"][str(n)] for n in sizes]),
                        "end": (list(sizes), [peaks[1]["gflops"][str(n)] for n in sizes])}},
            {"title": f"kernel matmul rate, % of {peak:.0f} GFLOP/s", "xlabel": "L", "ylabel": "% of peak",
             "series": series, "logy": False},
        ],
    )  # fmt: skip
    print(f"wrote {path} and {args.out / 'flops.png'}")
    return 0


def args_H(args: argparse.Namespace) -> int:
    from ssmkit.bench.kernels import sizes_for

    return sizes_for(args)[0]


def args_N(args: argparse.Namespace) -> int:
    from ssmkit.bench.kernels import sizes_for

    return sizes_for(args)[1]
