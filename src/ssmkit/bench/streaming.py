"""`ssmkit bench streaming`: per-token step latency of a deep model decoding one token at a time, against position.

The model: `ssmkit.models.SequenceModel`, 6 residual blocks of width H = 256 (LayerNorm, GLU), a real scalar input
and a 10-way sequence head, batch 1, float32, eval mode, no grad. Its sequence layer is one of the SSMs S4, S4D, LSSL,
LRU (state size N = 64), whose `step` is the recurrence x_t = Ā x_{t-1} + B̄ u_t, y_t = C x_t + D u_t: O(H·N) work and a
fixed-size state, whatever the position; or causal attention (`ssmkit.models.Transformer`) decoding with a KV cache:
step t attends to the t keys and values cached so far (the cache grows by concatenation), so its work and state grow
with t. One process per model (`ssmkit.bench.common`) runs `model.step` at positions 1 .. P (P = 16384) after a short
warm-up on a separate state, and times each step (wall clock). Right after each step it times a control: the same
model's step at position 1 (from the fixed initial state), the same work for an SSM and the cheapest step for
attention. The ratio step / control at each position cancels what the shared machine's load does to both.

Flatness: the median latency per position bucket (powers of two), and a least-squares line through the medians of
equal-width buckets of positions (robust to the shared machine's spikes): its slope, and the drift it predicts over
the whole run relative to the first bucket's median. Flat means a drift near 0 %; the Transformer's grows with P. The
same fit through the ratio step / control gives the load-controlled drift, the figure to read on a shared machine.
"""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

from ssmkit.bench import common

MODELS = ("s4", "s4d", "lssl", "lru", "transformer")
SSMS = ("s4", "s4d", "lssl", "lru")


def model_options(name: str, N: int) -> dict[str, Any]:
    return {"n_heads": 4} if name == "transformer" else {"d_state": N}


def stream_cell(device: str, layer: str, positions: int, H: int, n_layers: int, N: int) -> dict[str, Any]:
    """In the child: latency (s) of `model.step` at each position 1..positions, each followed by the latency of a
    control step at position 1 (the same model from its initial state); the final state's size, peak memory."""
    import torch

    from ssmkit.models import SequenceModel

    torch.manual_seed(0)
    model = SequenceModel(10, d_input=1, d_model=H, n_layers=n_layers, layer=layer,
                          layer_options=model_options(layer, N)).to(device).eval()  # fmt: skip
    u = torch.randn(1, positions, 1, device=device)  # (B=1, P, d_input=1)
    memory = common.PeakMemory(device)
    latencies, controls = [], []
    with torch.no_grad():
        warm = model.initial_state(1)
        for t in range(min(16, positions)):  # warm-up: first-call allocations stay out of the timings
            _, warm = model.step(u[:, t], warm)
        state, start = model.initial_state(1), model.initial_state(1)  # `start` is never replaced: steps are pure

        def control() -> None:
            model.step(u[:, 0], start)

        for t in range(positions):

            def step(t=t) -> None:
                nonlocal state
                _, state = model.step(u[:, t], state)

            latencies.append(common.time_call(step, device))
            controls.append(common.time_call(control, device))
    return {"latency_s": latencies, "control_s": controls, "state_mib": _nbytes(state) / 2**20,
            "peak_mib": memory.peak_mib()}  # fmt: skip


def _nbytes(state: Any) -> int:
    if isinstance(state, (tuple, list)):
        return sum(_nbytes(s) for s in state)
    return state.numel() * state.element_size() if hasattr(state, "numel") else 0


def flatness(latencies: list[float], n_buckets: int = 32) -> dict[str, Any]:
    """Power-of-two bucket medians, and a line through equal-width bucket medians: slope and relative drift."""
    P = len(latencies)
    positions = list(range(1, P + 1))
    edges = sorted({2**k for k in range(int(math.log2(P)))} | {P + 1})  # 1, 2, 4, ..., the last bucket up to P
    buckets = common.bucket_medians(positions, latencies, edges)
    width = max(1, P // n_buckets)
    centres, medians = [], []
    for start in range(0, P, width):
        chunk = latencies[start : start + width]
        centres.append(start + 1 + (len(chunk) - 1) / 2)
        medians.append(statistics.median(chunk))
    slope = common.fit_line(centres, medians)[0] if len(centres) >= 2 else 0.0
    # relative to the first bucket's measured median, not the line's intercept (which a latency growing faster than
    # linearly, like attention's, pushes to or below zero)
    return {
        "buckets": buckets,
        "slope_s_per_position": slope,
        "drift": slope * (P - 1) / medians[0] if medians[0] > 0 else float("nan"),
        "median_s": statistics.median(latencies),
    }


def step_over_control(latencies: list[float], controls: list[float]) -> list[float]:
    """Each step's latency over its control's (a step at position 1 timed right after it, under the same load)."""
    if len(latencies) != len(controls):
        raise ValueError(f"{len(latencies)} step latencies but {len(controls)} control latencies")
    return [s / c for s, c in zip(latencies, controls, strict=True)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--positions", type=int, default=16384, help="decode positions 1 .. this (default 16384)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--n-layers", type=int, default=6)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--d-state", type=int, default=64)
    common.add_common_arguments(p)


def run(args: argparse.Namespace) -> int:
    device = common.resolve_device(args.device)
    if args.quick:
        P, H, n_layers, N = 256, 32, 2, 8
    else:
        P, H, n_layers, N = args.positions, args.d_model, args.n_layers, args.d_state
    before = common.machine_record(device, args.threads)
    results, stats = {}, {}
    for name in args.models:
        kwargs = {"layer": name, "positions": P, "H": H, "n_layers": n_layers, "N": N}
        res = common.measure("ssmkit.bench.streaming:stream_cell", kwargs, threads=args.threads, device=device,
                             isolate=not args.quick)  # fmt: skip
        results[name] = res
        if "latency_s" in res:
            stats[name] = flatness(res["latency_s"])
            stats[name]["controlled"] = flatness(step_over_control(res["latency_s"], res["control_s"]))
            print(name, f"median {stats[name]['median_s'] * 1e3:.3f} ms, drift {100 * stats[name]['drift']:.1f}%, "
                  f"load-controlled drift {100 * stats[name]['controlled']['drift']:.1f}%")  # fmt: skip
        else:
            print(name, res, flush=True)
    after = common.machine_record(device, args.threads)
    body = report_body(args, results, stats, P, H, n_layers, N)
    path = common.write_report(
        args.out, "streaming", "Streaming: per-token step latency vs position", common.command_line(args),
        common.machine_lines(before, after), body,
    )  # fmt: skip
    plot(args, stats, P)
    print(f"wrote {path} and {args.out / 'streaming.png'}")
    return 0


def report_body(args, results, stats, P, H, n_layers, N) -> list[str]:
    names = [n for n in args.models if n in stats]
    summary_rows = []
    for name in args.models:
        res = results[name]
        if name not in stats:
            summary_rows.append([name, res.get("error", "—"), "", "", "", "", "", "", ""])
            continue
        s = stats[name]
        summary_rows.append(
            [name, f"{s['median_s'] * 1e3:.3f}", f"{s['buckets'][min(6, len(s['buckets']) - 1)][2] * 1e3:.3f}",
             f"{s['buckets'][-1][2] * 1e3:.3f}", f"{s['slope_s_per_position'] * 1e9:.3g}",
             f"{100 * s['drift']:+.1f}%", f"{100 * s['controlled']['drift']:+.1f}%", f"{res['state_mib']:.3g}",
             "{:.1f} / {:.1f}".format(*res["load"])]
        )  # fmt: skip
    edges = stats[names[0]]["buckets"] if names else []
    bucket_rows = [
        [f"{lo} .. {hi - 1}", *(f"{stats[n]['buckets'][i][2] * 1e3:.3f}" for n in names)]
        for i, (lo, hi, _) in enumerate(edges)
    ]
    ratio_rows = [
        [f"{lo} .. {hi - 1}", *(f"{stats[n]['controlled']['buckets'][i][2]:.3f}" for n in names)]
        for i, (lo, hi, _) in enumerate(edges)
    ]
    early = edges[min(6, len(edges) - 1)] if edges else (0, 1, 0)
    return [
        f"{n_layers} blocks, H = {H}, N = {N} (SSMs), batch 1, float32, positions 1 .. {P}. Latency of one "
        "`model.step` call (all blocks, head included), wall clock.",
        "",
        "## Summary",
        "",
        common.markdown_table(
            [
                "model",
                "median ms (all positions)",
                f"median ms, positions {early[0]}..{early[1] - 1}",
                f"median ms, last bucket ({edges[-1][0]}..{edges[-1][1] - 1})" if edges else "last bucket",
                "slope (ns per position)",
                f"fitted drift over {P} positions",
                "load-controlled drift",
                f"state MiB at position {P}",
                "load before / after",
            ],
            summary_rows,
        ),  # fmt: skip
        "",
        "## Median latency (ms) per position bucket",
        "",
        common.markdown_table(["positions", *names], bucket_rows) if names else "(nothing measured)",
        "",
        "## Step at position t / control step at position 1 timed right after it (median per bucket)",
        "",
        common.markdown_table(["positions", *names], ratio_rows) if names else "(nothing measured)",
        "",
        "How it is measured: " + " ".join(__doc__.split("\n\n")[1].split()),
        "",
        "The models run one after the other on a shared machine: a change of load during one model's run shows up in "
        "the raw drift too, and cancels in the load-controlled drift (step / control, both timed under the same load).",
        "",
        " ".join(__doc__.split("\n\n")[2].split()),
    ]


def plot(args, stats, P) -> None:
    series = {}
    for name, s in stats.items():
        xs = [math.sqrt(lo * max(lo, hi - 1)) for lo, hi, _ in s["buckets"]]
        series[name] = (xs, [m * 1e3 for _, _, m in s["buckets"]])
    common.plot_panels(
        args.out / "streaming.png",
        [{"title": f"per-token step latency (median per bucket), {P} positions", "xlabel": "position",
          "ylabel": "ms per token", "series": series}],
    )  # fmt: skip
