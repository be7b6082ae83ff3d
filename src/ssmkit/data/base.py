"""What every task gives the runner, where data lives on disk, and how missing data is reported.

A task is a `Task`: train / val / test datasets whose items are `(x, y)` pairs, and the facts the model needs to be
built for it. Inputs are either real-valued, x: float (L, d_input), or tokens, x: long (L,) with `vocab_size` set.
Targets by `kind`:
    "classify"        y: long ()              one class per sequence (pool over time, then decode)
    "regress"         y: float (d_output,)    one value per sequence (pool over time, then decode; MSE)
    "classify_steps"  y: long (L,)            a class per step (-100 = ignore)
    "regress_steps"   y: float (L, d_output)  a value per step
    "forecast"        y: float (horizon, d_output)  the future after the input window
Sequences of unequal length are batched by `pad_collate`, which returns (x, y, lengths) so padding never leaks into
pooling or the state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

KINDS = ("classify", "classify_steps", "regress", "regress_steps", "forecast")
DATA_DIR_ENV = "SSMKIT_DATA_DIR"


@dataclass
class Task:
    name: str
    kind: str  # one of KINDS
    train: Dataset
    val: Dataset | None
    test: Dataset
    d_output: int  # classes (classify*) or output channels (regress / forecast)
    d_input: int = 1  # channels per step for real-valued inputs
    vocab_size: int | None = None  # set for token inputs (x long (L,))
    l_max: int | None = None  # longest sequence length, when known
    variable_length: bool = False  # batches need pad_collate
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the scaler of a forecasting task

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Task.kind must be one of {KINDS}, got {self.kind!r}")


class DataMissingError(FileNotFoundError):
    """A dataset's files are not where they should be. The message names the files, the layout and the source."""


def missing(task: str, root: Path, expected: Sequence[str], source: str, note: str = "") -> DataMissingError:
    """Build the error for a missing dataset: what was looked for, where, and where users obtain it."""
    lines = [f"{task}: data not found under {root}", "expected one of these layouts:"]
    lines += [f"    {root / e}" for e in expected]
    lines.append(f"where to get it: {source}")
    lines.append(f"(set --data-dir or ${DATA_DIR_ENV} to the folder that holds it)")
    if note:
        lines.append(note)
    return DataMissingError("\n".join(lines))


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """--data-dir if given, else $SSMKIT_DATA_DIR, else ./data."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def pad_collate(batch: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Pad a list of (x (L_i, ...), y) to (B, L_max, ...) with zeros; returns (x, y, lengths (B,) long).

    Per-step targets (y with the same leading length as x) are padded with -100 (long) or 0 (float).
    """
    xs, ys = zip(*batch, strict=True)
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.long)
    x = torch.nn.utils.rnn.pad_sequence(list(xs), batch_first=True)
    if ys[0].dim() >= 1 and all(y.shape[0] == xi.shape[0] for y, xi in zip(ys, xs, strict=True)):
        pad = -100 if not ys[0].is_floating_point() else 0.0
        y = torch.nn.utils.rnn.pad_sequence(list(ys), batch_first=True, padding_value=pad)
    else:
        y = torch.stack(list(ys))
    return x, y, lengths


def carve_val(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices 0..n-1 into (train, val) by a seeded permutation; both returned sorted (original order)."""
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in [0, {n}), got {val_size}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def check_split_sizes(n_train: int, n_val: int, n_test: int) -> None:
    """Sizes of generated splits: train and test need at least one item; val may be 0 (then the task has no val)."""
    sizes = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
    bad = {
        k: v
        for k, v in sizes.items()
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if k == "n_val" else 1)
    }
    if bad:
        raise ValueError(f"n_train and n_test must be ints >= 1 and n_val an int >= 0, got {bad}")


def find_file(folders: Sequence[Path], name: str) -> Path | None:
    """The first of folder/name, folder/name.gz over `folders` that is a file; None if there is none."""
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None
