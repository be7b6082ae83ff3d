"""The `ssmkit` command. Each subcommand lives in the module that owns it; this file only wires them up.

A subcommand module exposes `add_arguments(parser)` and `run(args) -> int`; keep its top-level imports light
(heavy ones inside `run`), since `ssmkit --help` imports every subcommand module to list its options.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "hippo": ("ssmkit.hippo.demo", "reconstruct test signals online with each HiPPO measure: MSE vs N table and a PNG"),
    "train": ("ssmkit.train.loop", "train an experiment from configs/ (section.key=value overrides) or --resume a run"),
    "eval": ("ssmkit.train.evaluate", "evaluate a checkpoint (or run folder) on its task's val or test split"),
    "stream": ("ssmkit.train.stream", "feed a sequence token by token: agreement with the parallel pass, latency"),
    "bench": ("ssmkit.bench", "benchmarks (kernels, layers, streaming, scan, train_step, flops, configs, all)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssmkit",
        description="Linear state-space sequence models: HiPPO, LSSL, S4, S4D, LRU.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
