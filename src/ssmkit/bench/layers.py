"""`ssmkit bench layers`: forward + backward throughput (tokens/s) and peak memory of one sequence layer, SSMs vs
attention and an LSTM, as the length L grows.

Layers (each `ssmkit.models.make_layer(name, H, ...)`, as a user gets it, default options):
S4 (DPLR, Gu et al. 2022; its kernel is computed in float64 by default), S4D (Gu et al. 2022b), LSSL (Gu et al. 2021),
LRU (Orvieto et al. 2023; parallel scan), all with state size N = 64; a causal Transformer attention layer (4 heads,
torch `scaled_dot_product_attention`, rotary positions; `ssmkit.models.Transformer`) and an LSTM layer
(`ssmkit.models.LSTM`, torch `nn.LSTM`) of the same width. Batch 8, H = 256, L = 2^8 .. 2^16, float32.

One cell = one layer at one L, in its own process (`ssmkit.bench.common`): x (B, L, H) and a fixed random output
gradient G are built first; then the extra peak memory and the median time of y = layer(x) (no grad) and of
y = layer(x) followed by the backward of (y ⊙ G).sum() to x and every parameter. Throughput = B·L / (fwd+bwd time).
A cell whose memory (extra, plus x and G) or one call's time, extrapolated from the same layer at shorter L, exceeds the
budget is skipped with its estimate.

Reported from the same run: the length where each SSM's fwd+bwd time drops below attention's and stays there
(interpolated in log-log between the two measured lengths around it: `common.crossover_length`), and for each
layer the exponent p of time ∝ L^p and memory ∝ L^p, by least squares in log-log over L >= --fit-from (shorter
calls are dominated by fixed per-call costs).
"""

from __future__ import annotations

import argparse
from typing import Any

from ssmkit.bench import common

SSMS = ("s4", "s4d", "lssl", "lru")
BASELINES = ("transformer", "lstm")
LAYERS = SSMS + BASELINES
LENGTHS = [2**k for k in range(8, 17)]
QUICK_LENGTHS = [64, 128]


def layer_options(name: str, N: int) -> dict[str, Any]:
    if name in SSMS:
        return {"d_state": N}
    if name == "transformer":
        return {"n_heads": 4, "causal": True}
    return {}


def layer_cell(device: str, layer: str, L: int, B: int, H: int, N: int, repeats: int) -> dict[str, Any]:
    """In the child: extra peak memory and median time of the forward and of forward + backward."""
    import torch

    from ssmkit.models import make_layer

    torch.manual_seed(0)
    module = make_layer(layer, H, **layer_options(layer, N)).to(device)
    x = torch.randn(B, L, H, device=device, requires_grad=True)  # (B, L, H)
    G = torch.randn(B, L, H, device=device)  # (B, L, H) output gradient
    params = [x, *module.parameters()]

    def fwd() -> None:
        with torch.no_grad():
            module(x)

    def fwd_bwd() -> None:
        torch.autograd.grad((module(x) * G).sum(), params)

    memory = common.PeakMemory(device)
    out: dict[str, Any] = {"input_mib": 2 * x.numel() * 4 / 2**20}
    first = out["fwd_first_s"] = common.time_call(fwd, device)
    out["fwd_peak_mib"] = memory.peak_mib()
    out["fwd_s"] = common.median_time(fwd, first, repeats, device)
    first = out["bwd_first_s"] = common.time_call(fwd_bwd, device)
    out["bwd_peak_mib"] = memory.peak_mib()
    out["bwd_s"] = common.median_time(fwd_bwd, first, repeats, device)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=LENGTHS, help="sequence lengths L (default 2^8 .. 2^16)")
    p.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--d-model", type=int, default=256, help="H, the width of every layer")
    p.add_argument("--d-state", type=int, default=64, help="N, the SSMs' state size")
    p.add_argument("--fit-from", type=int, default=2**11, help="fit the exponents over L >= this")
    common.add_common_arguments(p, budget_gib=3.0, budget_s=60.0)


def sizes_for(args: argparse.Namespace) -> tuple[int, int, int, list[int]]:
    """(B, H, N, lengths): the options, or tiny ones with --quick."""
    if args.quick:
        return 2, 32, 8, QUICK_LENGTHS
    return args.batch, args.d_model, args.d_state, sorted(args.lengths)


def run(args: argparse.Namespace) -> int:
    device = common.resolve_device(args.device)
    B, H, N, lengths = sizes_for(args)
    before = common.machine_record(device, args.threads)
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for layer in args.layers:
        mem_pts: list[tuple[int, float]] = []  # (L, extra fwd+bwd GiB)
        time_pts: list[tuple[int, float]] = []  # (L, first fwd+bwd s)
        for L in lengths:
            input_gib = 2 * B * L * H * 4 / 2**30
            est_gib = common.extrapolate(mem_pts, L) + input_gib if mem_pts else None
            est_s = common.extrapolate(time_pts, L) if time_pts else None
            skip = common.budget_reason(est_gib, est_s, args.budget_gib, args.budget_s)
            if skip:
                res: dict[str, Any] = {"skip": skip}
            else:
                kwargs = {"layer": layer, "L": L, "B": B, "H": H, "N": N, "repeats": 1 if args.quick else args.repeats}
                res = common.measure("ssmkit.bench.layers:layer_cell", kwargs, threads=args.threads, device=device,
                                     isolate=not args.quick)  # fmt: skip
            if "bwd_s" in res:
                mem_pts.append((L, max(res["bwd_peak_mib"], 16.0) / 1024))
                time_pts.append((L, res["bwd_first_s"]))
            results[(layer, L)] = res
            print(layer, L, {k: v for k, v in res.items() if k != "load"}, flush=True)
    after = common.machine_record(device, args.threads)
    summary = analyse(args.layers, lengths, results, args.fit_from if not args.quick else lengths[0], B)
    body = report_body(args, results, lengths, summary, B, H, N)
    path = common.write_report(
        args.out, "layers", "Sequence layers: forward + backward throughput and memory vs length",
        common.command_line(args), common.machine_lines(before, after), body,
    )  # fmt: skip
    plot(args, results, lengths, B)
    print(f"wrote {path} and {args.out / 'layers.png'}")
    return 0


def series(results, layer: str, lengths: list[int], key: str) -> list[float | None]:
    return [results[(layer, L)].get(key) for L in lengths]


def analyse(layers, lengths, results, fit_from: int, B: int) -> dict[str, Any]:
    """Exponent fits per layer (time and memory) and each SSM's crossover length against attention."""
    out: dict[str, Any] = {"fits": {}, "crossover": {}, "fit_from": fit_from}
    for layer in layers:
        fit = {}
        for key in ("bwd_s", "bwd_peak_mib"):
            pts = [(L, v) for L, v in zip(lengths, series(results, layer, lengths, key), strict=True)
                   if v is not None and L >= fit_from and v > 0]  # fmt: skip
            if len(pts) >= 2:
                p, _ = common.fit_power_law([q[0] for q in pts], [q[1] for q in pts])
                fit[key] = (p, pts[0][0], pts[-1][0])
        out["fits"][layer] = fit
    if "transformer" in layers:
        attn_t = series(results, "transformer", lengths, "bwd_s")
        attn_m = series(results, "transformer", lengths, "bwd_peak_mib")
        for layer in (x for x in layers if x in SSMS):
            out["crossover"][layer] = {
                "time": common.crossover_length(lengths, series(results, layer, lengths, "bwd_s"), attn_t),
                "memory": common.crossover_length(lengths, series(results, layer, lengths, "bwd_peak_mib"), attn_m),
            }
    return out


def describe_crossover(c: dict[str, Any], lengths: list[int]) -> str:
    if c["kind"] == "crossed":
        return f"L ≈ {c['length']:.0f}"
    if c["kind"] == "always":
        return f"cheaper at every measured L (from {c['length']})"
    if c["kind"] == "never":
        return "not cheaper at the longest L where both were measured"
    return "no length with both measured"


def report_body(args, results, lengths, summary, B, H, N) -> list[str]:
    rows = []
    for (layer, L), res in results.items():
        load = res.get("load")
        if "bwd_s" in res:
            rows.append(
                [layer, L, common.fmt_ms(res["fwd_s"]), f"{res['fwd_peak_mib']:.0f}", common.fmt_ms(res["bwd_s"]),
                 f"{B * L / res['bwd_s']:,.0f}", f"{res['bwd_peak_mib']:.0f}", f"{load[0]:.1f} / {load[1]:.1f}"]
            )  # fmt: skip
        else:
            reason = res.get("skip") or res.get("error", "—")
            rows.append([layer, L, reason, "—", reason, "—", "—", f"{load[0]:.1f} / {load[1]:.1f}" if load else "—"])
    fit_rows = []
    for layer, fit in summary["fits"].items():
        t, m = fit.get("bwd_s"), fit.get("bwd_peak_mib")
        fit_rows.append(
            [layer, f"{t[0]:.2f} (L {t[1]}..{t[2]})" if t else "—", f"{m[0]:.2f} (L {m[1]}..{m[2]})" if m else "—"]
        )
    cross_rows = [
        [layer, describe_crossover(c["time"], lengths), describe_crossover(c["memory"], lengths)]
        for layer, c in summary["crossover"].items()
    ]
    return [
        f"B = {B}, H = {H}, N = {N} (SSMs), float32. Times: median of {args.repeats} calls in ms (about 30 s of timing "
        "per cell at most; a call over 10 s is timed once). tokens/s = B·L / (fwd+bwd time). Peak MiB: extra memory "
        "at the peak of the call over its inputs, one process per cell"
        + (" (--quick: measured in-process, so the memory columns are not meaningful)." if args.quick else "."),
        "",
        "## Where the SSMs overtake attention (fwd+bwd, same run)",
        "",
        common.markdown_table(["SSM", "time below attention from", "memory below attention from"], cross_rows)
        if cross_rows
        else "(no Transformer in this run)",
        "",
        f"## Growth with L: fitted exponent p of cost ∝ L^p (log-log least squares over measured L >= "
        f"{summary['fit_from']})",
        "",
        common.markdown_table(["layer", "fwd+bwd time exponent", "fwd+bwd peak memory exponent"], fit_rows),
        "",
        "## Table",
        "",
        common.markdown_table(
            [
                "layer",
                "L",
                "fwd ms",
                "fwd peak MiB",
                "fwd+bwd ms",
                "fwd+bwd tokens/s",
                "fwd+bwd peak MiB",
                "load before / after",
            ],
            rows,
        ),  # fmt: skip
        "",
        "How it is measured: " + " ".join(__doc__.split("\n\n")[2].split()),
        "",
        f"Budget: {args.budget_gib:g} GiB per process (extra memory plus x and G) and {args.budget_s:g} s per call; "
        "skipped cells show the estimate extrapolated from the same layer at shorter L.",
    ]


def plot(args, results, lengths, B) -> None:
    tput = {layer: (lengths, [B * L / r["bwd_s"] if "bwd_s" in r else None
                              for L, r in ((L, results[(layer, L)]) for L in lengths)])
            for layer in args.layers}  # fmt: skip
    mem = {layer: (lengths, series(results, layer, lengths, "bwd_peak_mib")) for layer in args.layers}
    common.plot_panels(
        args.out / "layers.png",
        [
            {"title": f"fwd+bwd throughput, batch {B}", "xlabel": "L", "ylabel": "tokens / s", "series": tput},
            {"title": "fwd+bwd peak extra memory", "xlabel": "L", "ylabel": "MiB", "series": mem},
        ],
    )
