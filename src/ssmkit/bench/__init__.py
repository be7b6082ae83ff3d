"""The benchmark suite behind `ssmkit bench NAME`: each benchmark writes benchmarks/NAME.md (table, command, machine)
and benchmarks/NAME.png. `ssmkit bench all` runs them one after the other.

A benchmark module exposes `add_arguments(parser)` and `run(args) -> int`, like a `ssmkit` subcommand; the module is
imported only to build its options, heavy imports stay inside `run`. Shared machinery: `ssmkit.bench.common`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

# name -> (module, one-line help); `all` runs them in this order
BENCHMARKS: dict[str, tuple[str, str]] = {
    "kernels": ("ssmkit.bench.kernels", "S4 / S4D / LSSL convolution kernels: time, peak memory, fast vs reference"),
    "layers": ("ssmkit.bench.layers", "fwd+bwd tokens/s and memory of S4, S4D, LSSL, LRU vs attention and LSTM"),
    "streaming": ("ssmkit.bench.streaming", "per-token step latency vs position: SSMs vs a KV-cache Transformer"),
    "scan": ("ssmkit.bench.scan", "the implementations of ssmkit.ops.scan and the FFT path"),
    "train_step": ("ssmkit.bench.train_step", "one optimiser step of the sMNIST S4D model"),
    "flops": ("ssmkit.bench.flops", "the machine's matmul FLOP/s and the fraction the SSM kernels reach"),
    "configs": ("ssmkit.bench.configs", "projected training time of each experiment config (default: configs/*_cpu)"),
}
# options `all` passes on to every benchmark that has them
FORWARDED = ("--quick", "--out", "--device", "--threads")


def available() -> dict[str, tuple[str, str]]:
    """The benchmarks whose module exists in this checkout (scan and train_step arrive from other work)."""
    return {name: spec for name, spec in BENCHMARKS.items() if importlib.util.find_spec(spec[0]) is not None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="benchmark", metavar="NAME")
    for name, (module, help_text) in available().items():
        bp = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(bp)
        bp.set_defaults(_bench_module=module, _bench_parser=bp)
    ap = sub.add_parser("all", help="run every benchmark in turn", description="run every benchmark in turn")
    ap.add_argument("--quick", action="store_true", help="small sizes in every benchmark")
    ap.add_argument("--out", default=None, help="folder for the tables and plots (default benchmarks/)")
    ap.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=None, help="torch threads in every benchmark")
    ap.set_defaults(_bench_module=None, _bench_parser=ap)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "benchmark", None) is None:
        names = ", ".join([*available(), "all"])
        print(f"ssmkit bench: name a benchmark: {names} (ssmkit bench --help)")
        return 2
    if args.benchmark != "all":
        return int(importlib.import_module(args._bench_module).run(args) or 0)
    return run_all(args)


def run_all(args: argparse.Namespace) -> int:
    """Each benchmark in turn, with the options of `all` that it accepts; the worst exit code."""
    worst = 0
    for name, (module, _) in available().items():
        parser = argparse.ArgumentParser(prog=f"ssmkit bench {name}")
        importlib.import_module(module).add_arguments(parser)
        known = {s for a in parser._actions for s in a.option_strings}
        argv: list[str] = []
        for flag in FORWARDED:
            value = getattr(args, flag[2:].replace("-", "_"))
            if flag not in known or value in (None, False):
                continue
            argv += [flag] if value is True else [flag, str(value)]
        sub_args = parser.parse_args(argv)
        sub_args.benchmark, sub_args._bench_module, sub_args._bench_parser = name, module, parser
        print(f"== ssmkit bench {name} {' '.join(argv)}", flush=True)
        worst = max(worst, int(importlib.import_module(module).run(sub_args) or 0))
    return worst
