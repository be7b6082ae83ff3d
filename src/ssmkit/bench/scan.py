"""`ssmkit bench scan`: time and peak memory of every implementation of ssmkit.ops.scan, and the FFT path.

    ssmkit bench scan                        # the full table -> benchmarks/scan.md and scan.png
    ssmkit bench scan --lengths 16384 --impls loop sequential --thp-all --out /tmp/scan

The scan is h_t = a_t ⊙ h_{t-1} + b_t (ssmkit/ops/scan.py). Rows: implementation ("loop" is the reference: a Python
loop over `unbind`, differentiated by autograd, the baseline of issue 4's target) x L x time-invariant a (N,) /
time-varying a_t (B, L, N); columns for the forward pass and for forward + backward. complex64, N = 256, B = 16
(B = 4 at L = 65536, so one (B, L, N) tensor stays 0.5 GiB; B is cut further where one call is estimated to need
more than --budget-gib). The backward is h.backward(w) with a random w made with the inputs, as when the gradient
comes from a layer's output projection. The loop is not run at L = 65536 (its graph needs ~4 GiB at B = 4).

Each cell runs in its own process (ssmkit.bench.common.run_cell): peak MiB is the increase of the process's resident
high-water mark during the first call (forward alone, then forward + backward), the time is the median of --repeats
calls after it, wall clock; "CPU s" is the process's user + system CPU time per call (median), which the other jobs
on a shared machine inflate less than wall time. Speedups are ratios to the loop in the same run.

--thp-all starts every cell with THP_MEM_ALLOC_ENABLE=1, so torch's own allocator (the loop's too) backs large
tensors with transparent huge pages, as ssmkit.ops.scan does for its outputs (see `_empty` there): it shows how much
of a speedup is the page faults the scan avoids and how much is the computation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from ssmkit.bench import common

IMPLS = ("loop", "sequential", "chunked", "parallel", "fft")
LENGTHS = [1024, 4096, 16384, 65536]
QUICK_LENGTHS = [256, 1024]
N = 256

# extra memory of one fwd+bwd call over its inputs (a_t, b, w), in units of one (B, L, N) complex64 tensor, as measured
# at L = 1024-4096 (the loop: at L = 16384): used to cut B where a cell would exceed the budget
MEMORY_FWD_BWD = {"loop": 11.0, "sequential": 3.2, "chunked": 5.0, "parallel": 7.0, "fft": 14.0}


def batch_for(L: int, impl: str, budget_gib: float, quick: bool = False) -> int:
    """B = 16 (4 at L >= 65536), divided by 4 while the estimated extra fwd+bwd memory exceeds the budget.

    The loop keeps B = 16 up to L = 16384 (~3 GiB over its inputs there) because it is the baseline the target is
    stated against.
    """
    B = 4 if quick or L >= 65536 else 16
    if impl == "loop":
        return B
    while B > 1 and MEMORY_FWD_BWD[impl] * B * L * N * 8 > budget_gib * 2**30:
        B //= 4
    return B


def scan_cell(device: str, impl: str, L: int, B: int, varying: bool, repeats: int) -> dict[str, Any]:
    """Inside the child: forward, then forward + backward: peak extra MiB of the first call, median wall / CPU s."""
    import torch

    from ssmkit.ops import scan

    torch.manual_seed(0)
    shape = (B, L, N) if varying else (N,)
    a = torch.polar(0.9 + 0.0999 * torch.rand(shape), 6.2831 * torch.rand(shape)).to(device).requires_grad_()
    b = torch.randn(B, L, N, dtype=torch.complex64, device=device, requires_grad=True)
    w = torch.randn(B, L, N, dtype=torch.complex64, device=device)

    def fwd() -> None:
        with torch.no_grad():
            scan(a, b, impl=impl)

    def fwd_bwd() -> None:
        scan(a, b, impl=impl).backward(w)
        a.grad = b.grad = None

    result: dict[str, Any] = {"B": B}
    peak = common.PeakMemory(device)  # one base: the fwd+bwd peak is then over the inputs too, not over fwd's peak
    for phase, fn in (("fwd", fwd), ("bwd", fwd_bwd)):
        first = common.time_call(fn, device)
        result[f"{phase}_peak_mib"] = peak.peak_mib()
        walls, cpus = [], []
        n = 1 if first > 10.0 else max(1, min(repeats, int(30.0 / max(first, 1e-9))))
        for _ in range(n):
            cpu0, wall0 = time.process_time(), time.perf_counter()  # process_time: user + system, ns resolution
            fn()
            cpu1, wall1 = time.process_time(), time.perf_counter()
            walls.append(wall1 - wall0)
            cpus.append(cpu1 - cpu0)
        result[f"{phase}_s"] = statistics.median(walls)
        result[f"{phase}_cpu_s"] = statistics.median(cpus)
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=LENGTHS, help="sequence lengths L (default 2^10 .. 2^16)")
    p.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    p.add_argument(
        "--thp-all",
        action="store_true",
        help="run every cell with THP_MEM_ALLOC_ENABLE=1 (huge pages for torch's allocator: the loop's memory too)",
    )
    common.add_common_arguments(p, budget_gib=3.0, budget_s=60.0)


def run(args: argparse.Namespace) -> int:
    device = common.resolve_device(args.device)
    lengths = QUICK_LENGTHS if args.quick else sorted(args.lengths)
    if args.thp_all:
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"  # inherited by every cell's process
    before = common.machine_record(device, args.threads)
    results: dict[tuple[int, bool, str], dict[str, Any]] = {}
    for L in lengths:
        for varying in (False, True):
            for impl in args.impls:
                if (impl == "fft" and varying) or (impl == "loop" and L >= 65536):
                    continue
                B = batch_for(L, impl, args.budget_gib, args.quick)
                kwargs = {"impl": impl, "L": L, "B": B, "varying": varying, "repeats": args.repeats}
                res = common.measure(
                    "ssmkit.bench.scan:scan_cell", kwargs, threads=args.threads, device=device, isolate=not args.quick
                )
                results[(L, varying, impl)] = res
                print(L, "a_t" if varying else "a", impl, {k: v for k, v in res.items() if k != "load"}, flush=True)
    after = common.machine_record(device, args.threads)
    thp = " Every cell ran with THP_MEM_ALLOC_ENABLE=1 (--thp-all)." if args.thp_all else ""
    body = [
        f"h_t = a_t ⊙ h_{{t-1}} + b_t, complex64, N = {N}; B per row (the loop's B up to L = 16384, cut where one "
        "call would exceed the memory budget). fwd: forward under no_grad; fwd+bwd: forward and h.backward(w). "
        "Time: median wall-clock s of the repeats after a first call; CPU s: user + system CPU time per call "
        "(median); peak MiB: extra resident memory of the first call. x loop: the loop's time over this row's, "
        f"same L, a and B (wall / CPU).{thp} load: 1-minute load average before / after the cell.",
        "",
        common.markdown_table(
            [
                "L",
                "B",
                "a",
                "impl",
                "fwd s",
                "fwd MiB",
                "fwd+bwd s",
                "fwd+bwd CPU s",
                "fwd+bwd MiB",
                "x loop fwd",
                "x loop fwd+bwd (wall / CPU)",
                "load",
            ],
            [_row(results, key) for key in results],
        ),  # fmt: skip
    ]
    path = common.write_report(
        args.out, "scan", "ssmkit.ops.scan: every implementation and the FFT path", common.command_line(args),
        common.machine_lines(before, after), body,
    )  # fmt: skip
    plot(args, results, lengths)
    print(f"wrote {path} and {args.out / 'scan.png'}")
    return 0


def _row(results: dict[tuple[int, bool, str], dict[str, Any]], key: tuple[int, bool, str]) -> list[Any]:
    L, varying, impl = key
    res = results[key]
    kind = "a_t (B, L, N)" if varying else "a (N,)"
    load = "{:.1f} / {:.1f}".format(*res["load"])
    if "error" in res:
        return [L, "", kind, impl, res["error"][:60], "", "", "", "", "", "", load]
    loop = results.get((L, varying, "loop"), {})
    same_b = loop.get("B") == res["B"] and "bwd_s" in loop
    x_fwd = _ratio(loop, res, "fwd_s") if same_b else ""
    x_bwd = f"{_ratio(loop, res, 'bwd_s')} / {_ratio(loop, res, 'bwd_cpu_s')}" if same_b else ""
    return [
        L, res["B"], kind, impl, f"{res['fwd_s']:.3f}", f"{res['fwd_peak_mib']:.0f}", f"{res['bwd_s']:.3f}",
        f"{res['bwd_cpu_s']:.2f}", f"{res['bwd_peak_mib']:.0f}", x_fwd, x_bwd, load,
    ]  # fmt: skip


def _ratio(loop: dict[str, Any], res: dict[str, Any], key: str) -> str:
    return f"{loop[key] / res[key]:.1f}" if res[key] > 0 else "—"


def plot(args: argparse.Namespace, results: dict[tuple[int, bool, str], dict[str, Any]], lengths: list[int]) -> None:
    """fwd+bwd time per B·L·N element (so rows with a cut B compare) against L, for a and a_t; and peak memory."""

    def per_element(L: int, varying: bool, impl: str, key: str, unit: float) -> float | None:
        res = results.get((L, varying, impl), {})
        return res[key] / (res["B"] * L * N) / unit if key in res else None

    panels = []
    for varying, title in ((False, "time-invariant a (N,)"), (True, "time-varying a_t (B, L, N)")):
        series = {}
        for impl in args.impls:
            ys = [per_element(L, varying, impl, "bwd_s", 1e-9) for L in lengths]  # ns per element
            if any(y is not None for y in ys):
                series[impl] = (lengths, ys)
        panels.append({"title": f"fwd+bwd, {title}", "xlabel": "L", "ylabel": "ns per element", "series": series})
    mem = {}
    for impl in args.impls:
        varying = impl != "fft"
        ys = [per_element(L, varying, impl, "bwd_peak_mib", 8 / 2**20) for L in lengths]  # in (B, L, N) tensors
        if any(y is not None for y in ys):
            mem[impl] = (lengths, ys)
    panels.append({"title": "fwd+bwd peak memory (a_t; a for fft)", "xlabel": "L",
                   "ylabel": "(B, L, N) complex64 tensors", "series": mem})  # fmt: skip
    common.plot_panels(args.out / "scan.png", panels)
