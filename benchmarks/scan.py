"""Benchmark of ssmkit.ops.scan (h_t = a_t ⊙ h_{t-1} + b_t): time and peak memory of every implementation.

    .venv/bin/python benchmarks/scan.py                # the full table -> benchmarks/scan.md
    .venv/bin/python benchmarks/scan.py --lengths 1024 --out /tmp/scan.md

Rows: implementation ("loop" is the reference: a Python loop over `unbind`, differentiated by autograd) x L x
time-invariant a (N,) / time-varying a_t (B, L, N) x forward / forward + backward. complex64, N = 256, B = 16 (B = 4 at
L = 65536, to keep one (B, L, N) tensor at 0.5 GiB on this shared machine). The backward pass is h.backward(w) with a
random (B, L, N) w made with the inputs, as when the gradient comes from a layer's output projection. The loop is not
run at L = 65536: its autograd graph needs ~3.4 GiB there, over this shared machine's per-process budget.

How it is measured: every row runs in its own subprocess. The child builds the inputs, records its peak resident set
size (ru_maxrss), runs the op once and records ru_maxrss again: "peak MiB" is the difference, the memory the op needed
on top of its inputs, at its peak. Then it times `repeats` further runs and reports the median (wall clock,
time.perf_counter). Speedups are ratios to the loop measured in the same run. The machine is shared: the table records
the load average before and after. Threads: `--threads` (default 1) sets torch.set_num_threads in every child; on this
2-core machine shared with other jobs, operations large enough for torch to split over 2 OpenMP threads ran 10-25x
slower than on one thread (the threads wait for a core), which hits the chunked, parallel and FFT paths and not the
per-step ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMPLS = ("loop", "sequential", "chunked", "parallel", "fft")
N = 256


def batch_for(L: int, impl: str, backward: bool) -> int:
    """B = 16 (4 at L = 65536), cut where one call would need more than ~3 GiB on this shared machine (MEMORY).

    The loop keeps B = 16 up to L = 16384 (~4.4 GiB at its fwd+bwd there) because it is the baseline the target is
    stated against; it is not run at L = 65536.
    """
    B = 16 if L < 65536 else 4
    if impl == "loop":
        return B
    while B > 1 and MEMORY[impl][backward] * B * L * N * 8 > 3 * 2**30:
        B //= 4
    return B


# extra memory of one call in units of one (B, L, N) complex64 tensor, as measured at L = 1024: {backward: factor}
MEMORY = {
    "loop": {False: 2.1, True: 8.7},
    "sequential": {False: 1.1, True: 3.2},
    "chunked": {False: 1.2, True: 5.3},
    "parallel": {False: 3.6, True: 7.3},
    "fft": {False: 6.5, True: 13.6},
}


def run_one(impl: str, L: int, varying: bool, backward: bool, repeats: int, threads: int) -> dict:
    """Inside the child: build inputs, measure peak extra memory of one call, then the median time of `repeats`."""
    import torch

    from ssmkit.ops import scan

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    B = batch_for(L, impl, backward)
    shape = (B, L, N) if varying else (N,)
    a = torch.polar(0.9 + 0.0999 * torch.rand(shape), 6.2831 * torch.rand(shape)).requires_grad_(backward)
    b = torch.randn(B, L, N, dtype=torch.complex64, requires_grad=backward)
    w = torch.randn(B, L, N, dtype=torch.complex64) if backward else None

    def call() -> None:
        h = scan(a, b, impl=impl)
        if backward:
            h.backward(w)
            a.grad = b.grad = None

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = [first]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "times": times, "peak_mib": (rss1 - rss0) / 1024, "B": B}


def measure(impl: str, L: int, varying: bool, backward: bool, repeats: int, timeout: float, threads: int) -> dict:
    flags = [str(L), str(int(varying)), str(int(backward)), str(repeats), str(threads)]
    cmd = [sys.executable, __file__, "--child", impl, *flags]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    except subprocess.CalledProcessError as err:
        return {"error": err.stderr.strip().splitlines()[-1][:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per row")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on this shared 2-core machine, 2-thread OpenMP ops measured 10-25x slower)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()

    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for L in args.lengths:
        for varying in (False, True):
            for backward in (False, True):
                results = {}
                for impl in args.impls:
                    if (impl == "fft" and varying) or (impl == "loop" and L >= 65536):
                        continue
                    repeats = 1 if impl == "loop" and backward and L >= 16384 else args.repeats
                    results[impl] = measure(impl, L, varying, backward, repeats, args.timeout, args.threads)
                    print(L, varying, backward, impl, results[impl], flush=True)
                rows.append((L, varying, backward, results))
    load_after = os.getloadavg()

    lines = [
        "# ssmkit.ops.scan benchmark",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`, started {started}.",
        f"Machine: {machine()}; run with torch.set_num_threads({args.threads}).",
        f"Load average (1, 5, 15 min) before: {load_before[0]:.2f}, {load_before[1]:.2f}, {load_before[2]:.2f}; "
        f"after: {load_after[0]:.2f}, {load_after[1]:.2f}, {load_after[2]:.2f} (shared machine: times are noisy, "
        "ratios within a row group were measured minutes apart at most).",
        "",
        "h_t = a_t ⊙ h_{t-1} + b_t, complex64, N = 256, B = 16 (B = 4 at L = 65536: one (B, L, N) tensor is 0.5 GiB "
        "either way; B is cut further, column B, where one call would need over ~3 GiB; the loop is not run at "
        "L = 65536). Backward: h.backward(w) with a random w. Time: median wall-clock seconds of the repeats "
        "(the loop's fwd+bwd at L >= 16384: one run). Peak MiB: extra resident memory of one call over its inputs "
        "(ru_maxrss delta, one subprocess per row). "
        "x loop: the loop's median time over this one's. auto picks 'sequential' with 1 thread, 'chunked' with more.",
        "",
        "| L | B | a | pass | impl | time (s) | peak MiB | x loop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for L, varying, backward, results in rows:
        loop_time = results.get("loop", {}).get("median_s")  # ratios only where B matches the loop's
        for impl, r in results.items():
            kind = "a_t (B, L, N)" if varying else "a (N,)"
            passes = "fwd+bwd" if backward else "fwd"
            if "error" in r:
                lines.append(
                    f"| {L} | {batch_for(L, impl, backward)} | {kind} | {passes} | {impl} | {r['error']} | | |"
                )
                continue
            speedup = ""
            if loop_time and results["loop"]["B"] == r["B"]:
                speedup = f"{loop_time / r['median_s']:.1f}"
            cells = [L, r["B"], kind, passes, impl, f"{r['median_s']:.3f}", f"{r['peak_mib']:.0f}", speedup]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        impl, L, varying, backward, repeats, threads = sys.argv[2:8]
        print(json.dumps(run_one(impl, int(L), bool(int(varying)), bool(int(backward)), int(repeats), int(threads))))
    else:
        main()
