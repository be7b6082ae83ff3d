"""`ssmkit eval <checkpoint or run folder>`: rebuild the task and model from the checkpoint's config and report the
metrics on a split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from ssmkit.data.base import DataMissingError, Task, pad_collate
from ssmkit.train import distributed
from ssmkit.train.build import build_model, build_task
from ssmkit.train.checkpoint import load_checkpoint
from ssmkit.train.config import ExperimentConfig, apply_overrides, from_dict


def load_run(
    path: str | Path, overrides: list[str] | None = None, data_dir: str | None = None
) -> tuple[ExperimentConfig, Task, nn.Module, dict]:
    """(config, task, model in eval mode with the checkpoint's weights, checkpoint) from a .pt file or a run folder;
    `data_dir` (if given) replaces the run's task.data_dir."""
    ckpt = load_checkpoint(path)
    cfg = from_dict(apply_overrides(ckpt["config"], overrides or []), source=f"checkpoint {path}")
    if data_dir is not None:
        cfg.task.data_dir = data_dir
    task = build_task(cfg)
    model = build_model(cfg, task)
    model.load_state_dict(ckpt["model"])
    return cfg, task, model.eval(), ckpt


def evaluate_checkpoint(
    path: str | Path, split: str = "test", overrides: list[str] | None = None, data_dir: str | None = None
) -> dict[str, float]:
    from ssmkit.train.loop import _autocast, _evaluate

    cfg, task, model, _ = load_run(path, overrides, data_dir)
    extra = task.info.get("extra_tests", {})  # e.g. test_half_rate: {"dataset": ..., "rate": 2.0}
    if split in extra:
        dataset, rate = extra[split]["dataset"], float(extra[split].get("rate", 1.0))
    elif split in ("train", "val", "test") and getattr(task, split) is not None:
        dataset, rate = getattr(task, split), 1.0
    else:
        valid = [s for s in ("train", "val", "test") if getattr(task, s) is not None] + list(extra)
        raise ValueError(f"split must be one of {', '.join(valid)} for task {task.name}; got {split!r}")
    use_cuda = cfg.train.device in ("auto", "cuda") and torch.cuda.is_available()  # a GPU run evaluates on a CPU too
    d = distributed.Dist(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    model.to(d.device)
    collate = pad_collate if task.variable_length else None
    return _evaluate(model, dataset, cfg, task.kind, task.info.get("tolerance"), d, collate,
                     _autocast(cfg.train.precision, d.device), rate=rate)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint .pt file or a run folder (uses checkpoints/last.pt)")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.max_eval_batches=10 task.data_dir=...")
    p.add_argument(
        "--split",
        default="test",
        help="train, val, test, or one of the task's extra tests (e.g. test_half_rate for Speech Commands)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="where datasets live (default: the run's task.data_dir)")


def run(args: argparse.Namespace) -> int:
    try:
        metrics = evaluate_checkpoint(args.checkpoint, args.split, args.overrides, args.data_dir)
    except (ValueError, DataMissingError, FileNotFoundError) as e:
        print(f"ssmkit eval: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.checkpoint} [{args.split}]: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0
