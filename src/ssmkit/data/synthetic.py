"""Long-range synthetic tasks generated on the fly: copying, selective copying and the adding problem.

Each item is drawn from its own generator, seeded by (seed, split, index), so a dataset costs no memory, any item can be
regenerated exactly, and the three splits never share an item. No files are needed.

- copying (Hochreiter & Schmidhuber 1997, §5; Arjovsky et al. 2016 "Unitary evolution RNNs", §4.1): `n_tokens`
  symbols from {1..n_symbols}, then blanks (0), then a delimiter (n_symbols + 1) `n_tokens` steps before the end; the
  model must output the symbols, in order, at the last `n_tokens` steps. The delay (length - 2·n_tokens) is fixed,
  so a time-invariant convolution can solve it.
- selective copying (Gu & Dao 2023, "Mamba", §3.1 and Fig. 2): the same symbols at random, sorted positions among
  blanks in the first (length - n_tokens) steps, then `n_tokens` markers (n_symbols + 1); the model outputs the symbols
  in order at the markers. The positions vary, so the model must select by content.
- adding (Hochreiter & Schmidhuber 1997, §5 exp. 4; Le et al. 2015 "IRNN", §4.1): x (L, 2), channel 0 uniform in
  [0, 1], channel 1 marks one step in the first half and one in the second; the target is the sum of the two marked
  values: a regression of one number per sequence (kind "regress", y (1,), mean squared error). A prediction within
  `info["tolerance"]` = 0.04 counts as correct, the criterion of the 1997 paper; always answering the mean, 1, scores
  MSE = Var(U1 + U2) = 1/6 (`info["baseline_mse"]`), the number Le et al. 2015 (Fig. 2) compare against.

Targets of the copying tasks are per-step classes, -100 (ignored) wherever there is nothing to output.

Measured with the `copying` config's deep S4D (2 x 64, N = 64, lr 0.01, cosine, batch 16, one thread) at length 200:
adding reaches test MSE 0.0031 (baseline 1/6) and 75 % within the tolerance after 1000 steps with model.pool=mean,
while pool=last stays at the baseline for the first 300; selective copying reaches 26 % (chance 12.5 %) after 400
steps: selecting by content is what a time-invariant convolution cannot do (Gu & Dao 2023, Table 1: S4 18.3 %).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task

SPLITS = ("train", "val", "test")


class GeneratedDataset(Dataset):
    """`size` items of `make(rng) -> (x, y)`, item i drawn from numpy's default_rng((seed, split, i))."""

    def __init__(self, make, size: int, seed: int, split: str) -> None:
        self.make, self.size, self.seed = make, size, seed
        self.split_id = zlib.crc32(split.encode())  # a stable number per split

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for a dataset of {self.size} items")
        return self.make(np.random.default_rng((self.seed, self.split_id, index)))


def _check(length: int, n_tokens: int, n_symbols: int, sizes: tuple[int, int, int], min_length: int) -> None:
    for name, val in (("length", length), ("n_tokens", n_tokens), ("n_symbols", n_symbols)):
        if not (isinstance(val, int) and val >= 1):
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if length < min_length:
        raise ValueError(f"length={length} is too short for n_tokens={n_tokens}: need length >= {min_length}")
    if not all(isinstance(n, int) and n >= 1 for n in sizes):
        raise ValueError(f"n_train, n_val, n_test must be positive ints, got {sizes}")


def _task(name: str, kind: str, make, sizes, seed, d_output, length, **kw) -> Task:
    train, val, test = (GeneratedDataset(make, n, seed, split) for n, split in zip(sizes, SPLITS, strict=True))
    return Task(name=name, kind=kind, train=train, val=val, test=test, d_output=d_output, l_max=length, **kw)


def copying_task(
    length: int = 200,
    n_tokens: int = 10,
    n_symbols: int = 8,
    n_train: int = 10_000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> Task:
    """Copying memory: x long (length,), y long (length,): the first n_tokens symbols, due at the last n_tokens."""
    _check(length, n_tokens, n_symbols, (n_train, n_val, n_test), min_length=2 * n_tokens + 1)
    delimiter = n_symbols + 1

    def make(rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        symbols = torch.from_numpy(rng.integers(1, n_symbols + 1, size=n_tokens))
        x = torch.zeros(length, dtype=torch.long)
        x[:n_tokens] = symbols
        x[length - n_tokens - 1] = delimiter
        y = torch.full((length,), -100, dtype=torch.long)
        y[length - n_tokens :] = symbols
        return x, y

    info = {"n_tokens": n_tokens, "delay": length - 2 * n_tokens}
    return _task(
        "copying",
        "classify_steps",
        make,
        (n_train, n_val, n_test),
        seed,
        n_symbols + 2,
        length,
        vocab_size=n_symbols + 2,
        info=info,
    )


def selective_copying_task(
    length: int = 200,
    n_tokens: int = 16,
    n_symbols: int = 8,
    n_train: int = 10_000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> Task:
    """Selective copying: symbols at random sorted positions, recalled in order at the n_tokens markers at the end."""
    _check(length, n_tokens, n_symbols, (n_train, n_val, n_test), min_length=2 * n_tokens)
    marker = n_symbols + 1

    def make(rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        symbols = torch.from_numpy(rng.integers(1, n_symbols + 1, size=n_tokens))
        positions = torch.from_numpy(np.sort(rng.choice(length - n_tokens, size=n_tokens, replace=False)))
        x = torch.zeros(length, dtype=torch.long)
        x[positions] = symbols
        x[length - n_tokens :] = marker
        y = torch.full((length,), -100, dtype=torch.long)
        y[length - n_tokens :] = symbols
        return x, y

    return _task(
        "selective_copying",
        "classify_steps",
        make,
        (n_train, n_val, n_test),
        seed,
        n_symbols + 2,
        length,
        vocab_size=n_symbols + 2,
        info={"n_tokens": n_tokens},
    )


def adding_task(
    length: int = 200,
    n_train: int = 10_000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    tolerance: float = 0.04,
) -> Task:
    """The adding problem: x float (length, 2) = (value, marker), y float (1,) = the sum of the two marked values."""
    _check(length, 1, 1, (n_train, n_val, n_test), min_length=2)
    half = length // 2

    def make(rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        values = torch.from_numpy(rng.random(length, dtype=np.float32))
        first, second = int(rng.integers(0, half)), int(rng.integers(half, length))
        x = torch.zeros(length, 2)
        x[:, 0] = values
        x[[first, second], 1] = 1.0
        return x, (values[first] + values[second]).view(1)

    return _task(
        "adding",
        "regress",
        make,
        (n_train, n_val, n_test),
        seed,
        1,
        length,
        d_input=2,
        info={"tolerance": tolerance, "baseline_mse": 1 / 6},
    )
