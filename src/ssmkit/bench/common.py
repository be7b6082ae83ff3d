"""What every `ssmkit bench` benchmark shares: machine record, isolated measurements, budgets, fits, tables, plots.

How a measurement is taken (the same for every benchmark):

- Each cell (one model / path / length) runs in its own Python subprocess (`run_cell`), so one cell's allocations,
  caches and threads never leak into the next, and a cell that runs out of memory fails alone. The child sets the
  thread count (`torch.set_num_threads`) before building anything and prints one JSON line.
- Peak memory (`PeakMemory`) is the extra memory a call needed at its peak, over what was allocated before it: on CPU
  the increase of the process's resident-set high-water mark (`ru_maxrss`, Linux: KiB); on CUDA
  `torch.cuda.max_memory_allocated` minus the memory allocated before (after `reset_peak_memory_stats`).
- Times are wall clock (`time.perf_counter`, after `torch.cuda.synchronize` on CUDA), the median over repeats
  (`median_time`); a call slower than `once_above_s` is timed once.
- A cell whose memory or time, extrapolated from the same series at smaller sizes (`extrapolate`), would exceed the
  budget is not run: the table says "skipped" with the estimate.
- The machine is shared: each cell records the 1-minute load average before and after; only ratios measured in one
  run are meant to be compared.

Fits used in the reports: `fit_power_law` (cost ∝ L^p by least squares on log cost vs log L), `crossover_length`
(where one cost curve drops below another and stays there, interpolated in log-log), `fit_line` (latency vs
position: flat means slope ≈ 0).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("benchmarks")


# ---- command-line options shared by the benchmarks ------------------------------------------------------------------
def add_common_arguments(p: argparse.ArgumentParser, *, budget_gib: float = 3.0, budget_s: float = 60.0) -> None:
    """--quick, --out, --device, --threads, --repeats, --budget-gib, --budget-s."""
    p.add_argument("--quick", action="store_true", help="small sizes: a few-second end-to-end check of the benchmark")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder for NAME.md and NAME.png (default benchmarks/)"
    )
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA when present, else CPU"
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads in every measurement (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell; the table reports their median")
    p.add_argument("--budget-gib", type=float, default=budget_gib, help="skip cells estimated to need more memory")
    p.add_argument("--budget-s", type=float, default=budget_s, help="skip cells whose one call is estimated slower")


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is a ValueError."""
    import torch

    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device; use --device cpu or auto")
    return name


# ---- the machine ----------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine_record(device: str, threads: int) -> dict[str, Any]:
    """CPU model and count, memory, Python, torch, threads, device (GPU name on CUDA), load average now."""
    import torch

    record = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": threads,
        "device": device,
        "load": load_average(),
        "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if device == "cuda":
        record["gpu"] = torch.cuda.get_device_name(0)
    return record


def machine_lines(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Markdown bullet lines describing the machine and the load before / after the run."""
    gpu = f"; GPU: {before['gpu']}" if "gpu" in before else ""
    return [
        f"- machine: {before['cpu']}, {before['cpus']} CPUs, {before['memory_gib']} GiB RAM{gpu}",
        f"- device: {before['device']}; torch {before['torch']}; Python {before['python']}; "
        f"torch intra-op threads per measurement: {before['threads']}",
        f"- started {before['time']}, finished {after['time']}",
        "- load average (1 / 5 / 15 min) at start: {:.2f} / {:.2f} / {:.2f}; at end: {:.2f} / {:.2f} / {:.2f}".format(
            *before["load"], *after["load"]
        ),
    ]


# ---- measurement inside a child process -----------------------------------------------------------------------------
def rss_mib() -> float:
    """The process's peak resident set size so far (a high-water mark), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux


class PeakMemory:
    """Extra memory at peak since `reset()`, MiB: ru_maxrss increase on CPU, max_memory_allocated increase on CUDA."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.base = 0.0
        self.reset()

    def reset(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            self.base = rss_mib()

    def peak_mib(self) -> float:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20 - self.base
        return rss_mib() - self.base


def time_call(fn: Callable[[], Any], device: str = "cpu") -> float:
    """Wall-clock seconds of one call (synchronised on CUDA)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - start
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(
    fn: Callable[[], Any],
    first_s: float,
    repeats: int,
    device: str = "cpu",
    once_above_s: float = 10.0,
    max_total_s: float = 30.0,
) -> float:
    """Median of `repeats` timed calls after a first (warm-up) call that took `first_s`; fewer calls when slow.

    A call slower than `once_above_s` is timed once (its first run: at that scale warm-up is noise); otherwise at most
    about `max_total_s` seconds of timing.
    """
    if first_s > once_above_s:
        return first_s
    n = max(1, min(repeats, int(max_total_s / max(first_s, 1e-9))))
    return statistics.median(time_call(fn, device) for _ in range(n))


def run_cell(target: str, kwargs: dict[str, Any], *, threads: int, device: str, timeout_s: float = 3600) -> dict:
    """Run `module:function(**kwargs)` in a fresh Python process with `threads` torch threads on `device`.

    Returns the function's result (a JSON-able dict) plus "load" (1-min load average before, after), or
    {"error": ...} with the child's last stderr line when it failed.
    """
    payload = json.dumps({"target": target, "kwargs": kwargs, "threads": threads, "device": device})
    load0 = load_average()[0]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ssmkit.bench.common", payload],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s", "load": (load0, load_average()[0])}
    load1 = load_average()[0]
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}", "load": (load0, load1)}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = (load0, load1)
    return result


def measure(target: str, kwargs: dict[str, Any], *, threads: int, device: str, isolate: bool = True) -> dict:
    """`run_cell` (its own process) when `isolate`, else call the function here (quick checks: no process start-up;
    its memory column then includes whatever this process allocated before, so it is not meaningful)."""
    if isolate:
        return run_cell(target, kwargs, threads=threads, device=device)
    import torch

    module, function = target.split(":")
    fn = getattr(importlib.import_module(module), function)
    saved = torch.get_num_threads()
    load0 = load_average()[0]
    torch.set_num_threads(threads)
    try:
        result = fn(device=device, **kwargs)
        result["threads"] = torch.get_num_threads()
    finally:
        torch.set_num_threads(saved)
    result["load"] = (load0, load_average()[0])
    return json.loads(json.dumps(result))  # the same types a child's JSON line would give


def _child_main(payload: str) -> None:
    import torch

    spec = json.loads(payload)
    torch.set_num_threads(spec["threads"])
    module, function = spec["target"].split(":")
    fn = getattr(importlib.import_module(module), function)
    result = fn(device=spec["device"], **spec["kwargs"])
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


# ---- budgets and extrapolation --------------------------------------------------------------------------------------
def extrapolate(points: Sequence[tuple[float, float]], x: float) -> float:
    """Estimate a cost at size x from measured (size, cost) points of the same series at smaller sizes.

    With two or more points, the largest of: the last cost, the affine extrapolation through the last two points
    (a fixed cost plus a linear term), and the power law through them (the local log-log slope, clamped to [0, 2.5]:
    small measurements are noisy), so a cost growing like L with an offset, or faster than L, is not underestimated.
    With one point: proportional to x. Costs are clamped to >= 1e-9 before taking logs.
    """
    if not points:
        raise ValueError("extrapolate needs at least one measured (size, cost) point")
    pts = sorted(points)
    x1, y1 = pts[-1]
    y1 = max(y1, 1e-9)
    if len(pts) == 1:
        return y1 * x / x1
    x0, y0 = pts[-2]
    y0 = max(y0, 1e-9)
    affine = y1 + (y1 - y0) / (x1 - x0) * (x - x1)
    p = min(2.5, max(0.0, math.log(y1 / y0) / math.log(x1 / x0)))
    return max(y1, affine, y1 * (x / x1) ** p)


def budget_reason(est_gib: float | None, est_s: float | None, budget_gib: float, budget_s: float) -> str | None:
    """Why a cell is skipped (its estimate over a budget), or None to run it."""
    if est_gib is not None and est_gib > budget_gib:
        return f"skipped: ~{est_gib:.1f} GiB estimated > {budget_gib:g} GiB budget"
    if est_s is not None and est_s > budget_s:
        return f"skipped: ~{est_s:.0f} s per call estimated > {budget_s:g} s budget"
    return None


# ---- fits -----------------------------------------------------------------------------------------------------------
def fit_power_law(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least squares of log y = p log x + log c over positive points. Returns (p, c): y ≈ c · x^p."""
    import numpy as np

    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0 and y is not None and y > 0]
    if len(pairs) < 2:
        raise ValueError(f"fit_power_law needs >= 2 positive points, got {len(pairs)}")
    lx, ly = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    p, logc = np.polyfit(lx, ly, 1)
    return float(p), float(math.exp(logc))


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least squares y ≈ a + b x. Returns (b, a): slope, intercept."""
    import numpy as np

    if len(xs) < 2:
        raise ValueError(f"fit_line needs >= 2 points, got {len(xs)}")
    b, a = np.polyfit(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 1)
    return float(b), float(a)


def crossover_length(
    lengths: Sequence[float], cost: Sequence[float | None], rival: Sequence[float | None]
) -> dict[str, Any]:
    """Where `cost` drops below `rival` for good, over the lengths where both were measured.

    Returns {"kind": ..., "length": ...}:
      "crossed": cheaper from some measured length on, more expensive just before; "length" is the crossing
                 interpolated linearly in log L of log(cost / rival) between those two lengths;
      "always":  cheaper at every measured length ("length": the shortest one);
      "never":   not cheaper at the longest measured length ("length": None);
      "no_data": fewer than one length with both measured.
    """
    pairs = [(L, c, r) for L, c, r in zip(lengths, cost, rival, strict=True) if c is not None and r is not None]
    pairs.sort()
    if not pairs:
        return {"kind": "no_data", "length": None}
    if pairs[-1][1] >= pairs[-1][2]:
        return {"kind": "never", "length": None}
    i = len(pairs) - 1
    while i > 0 and pairs[i - 1][1] < pairs[i - 1][2]:
        i -= 1
    if i == 0:
        return {"kind": "always", "length": pairs[0][0]}
    (L0, c0, r0), (L1, c1, r1) = pairs[i - 1], pairs[i]
    g0, g1 = math.log(c0 / r0), math.log(c1 / r1)  # g0 >= 0 > g1
    t = g0 / (g0 - g1)
    return {"kind": "crossed", "length": math.exp(math.log(L0) + t * (math.log(L1) - math.log(L0)))}


def bucket_medians(
    positions: Sequence[int], values: Sequence[float], edges: Sequence[int]
) -> list[tuple[int, int, float]]:
    """Median of `values` in each position bucket [edges[i], edges[i+1]). Returns (lo, hi, median) per bucket."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        vals = [v for p, v in zip(positions, values, strict=True) if lo <= p < hi]
        if vals:
            out.append((lo, hi, statistics.median(vals)))
    return out


# ---- output ---------------------------------------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; every row must have one cell per header."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"table row has {len(row)} cells, headers have {len(headers)}: {row!r}")
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out: Path, name: str, title: str, command: str, machine: list[str], body: list[str]) -> Path:
    """Write out/NAME.md: title, command, machine lines, then the body (paragraphs, tables). Returns the path."""
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join([f"# {title}", "", "Command:", "", "```", command, "```", "", *machine, "", *body, ""])
    path = out / f"{name}.md"
    path.write_text(text)
    return path


def plot_panels(path: Path, panels: list[dict[str, Any]]) -> Path:
    """One PNG with a row of panels. Each panel: title, xlabel, ylabel, series {label: (xs, ys)}, logx, logy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for label, (xs, ys) in panel["series"].items():
            pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=panel.get("marker", "o"), ms=3, label=label)
        ax.set_xscale("log" if panel.get("logx", True) else "linear")
        ax.set_yscale("log" if panel.get("logy", True) else "linear")
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def command_line(args: argparse.Namespace) -> str:
    """The `ssmkit bench NAME ...` command that reproduces this run (options that differ from their defaults)."""
    parser: argparse.ArgumentParser = args._bench_parser
    parts = ["ssmkit", "bench", args.benchmark]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return " ".join(parts)


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds: 3 significant digits below 100 ms, whole ms (thousands separated) above."""
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


if __name__ == "__main__":
    _child_main(sys.argv[1])
