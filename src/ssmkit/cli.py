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


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse argv; section.key=value overrides may also follow an option (`ssmkit eval run --split test a.b=1`).

    argparse gives a `nargs="*"` positional only the words before the first option, so overrides after one would be
    refused as unrecognised; they are appended to `overrides` instead. Anything else unknown is still an error.
    """
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(word.startswith("-") or "=" not in word for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides or []) + extra
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
