"""Pixel-level image classification: sequential MNIST, permuted sMNIST, sequential CIFAR-10 (colour and grey).

An image is flattened in raster order (row by row) into a sequence, one pixel per step:
    sMNIST   x: float (784, 1)     Le et al. 2015, used by LSSL (Gu et al. 2021, sec. 5) and S4 (Gu et al. 2022, tab. 6)
    psMNIST  x: float (784, 1)     the same pixels under one fixed permutation drawn from `perm_seed`
    sCIFAR   x: float (1024, 3)    colour, channels last (R, G, B) (S4 tab. 6; LRU "sCIFAR")
    sCIFAR grey / LRA Image  x: float (1024, 1), grey = round(0.2989 R + 0.5870 G + 0.1140 B) (Tay et al. 2021, LRA)
Pixels are scaled to [0, 1]; with `normalize=True` each channel is standardised by the mean and std of the training
images (the usual per-channel normalisation of the S4 code). Targets are class ids, y: long ().

Splits: the standard train / test files; val is carved from train by a seeded permutation (`val_size` images, default
10 %: 6000 for MNIST, 5000 for CIFAR-10, as the S4 code's val_split = 0.1); the rest stays train.

Files looked for under the data folder (`resolve_data_dir`); the first layout found is used:
    MNIST     mnist/mnist.npz or mnist.npz (x_train (60000, 28, 28) uint8, y_train, x_test, y_test), else the IDX files
              train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each
              optionally .gz) in the data folder, mnist/ or MNIST/raw/ (torchvision's layout)
    CIFAR-10  cifar-10-batches-py/data_batch_1..5 and test_batch (the official python version), in the data folder or
              cifar10/; grey also from cifar10_gray/cifar10_gray.npz or cifar10_gray.npz (x_train (50000, 32, 32) uint8)
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, carve_val, find_file, missing, resolve_data_dir

MNIST_SOURCE = (
    "the MNIST database (Y. LeCun, C. Cortes, C. Burges): the four IDX files 'train-images-idx3-ubyte.gz', "
    "'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz' from the MNIST page or a "
    "mirror (e.g. the ones torchvision uses), or keras' 'mnist.npz'"
)
CIFAR_SOURCE = (
    "CIFAR-10 'python version' (cifar-10-python.tar.gz, unpacked to cifar-10-batches-py/) from Alex Krizhevsky's "
    "CIFAR page at the University of Toronto"
)
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # ITU-R 601 luma, as tf.image.rgb_to_grayscale (LRA Image)


# ---------------------------------------------------------------------------------------------------- datasets
class PixelDataset(Dataset):
    """Images kept as uint8 (N, L, C); item i is (x float (L, C), y long ()), converted on access to keep memory low.

    x = (pixel / 255 - mean) / std, then the steps reordered by `permutation` (a (L,) index) when given.
    """

    def __init__(
        self,
        pixels: np.ndarray,  # (N, L, C) uint8
        labels: np.ndarray,  # (N,) int
        mean: np.ndarray | None = None,  # (C,) in [0, 1] units
        std: np.ndarray | None = None,  # (C,)
        permutation: np.ndarray | None = None,  # (L,) long
    ) -> None:
        if pixels.ndim != 3 or pixels.dtype != np.uint8:
            raise ValueError(f"pixels must be uint8 (N, L, C), got {pixels.dtype} {pixels.shape}")
        if len(pixels) != len(labels):
            raise ValueError(f"{len(pixels)} images but {len(labels)} labels")
        writable = pixels.flags.writeable and pixels.flags.c_contiguous
        self.pixels = torch.from_numpy(pixels if writable else pixels.copy())
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        C = pixels.shape[2]
        self.mean = torch.zeros(C) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.ones(C) if std is None else torch.as_tensor(std, dtype=torch.float32)
        self.permutation = None if permutation is None else torch.as_tensor(permutation, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = (self.pixels[i].float() / 255.0 - self.mean) / self.std  # (L, C)
        if self.permutation is not None:
            x = x[self.permutation]
        return x, self.labels[i]


def channel_stats(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 (N, L, C) pixels in [0, 1] units, from a 256-bin histogram (no float copy)."""
    v = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(pixels.shape[2]):
        p = np.bincount(pixels[:, :, c].ravel(), minlength=256) / pixels[:, :, c].size
        m = p @ v
        mean.append(m)
        std.append(np.sqrt(p @ (v - m) ** 2))
    return np.array(mean), np.array(std)


def fixed_permutation(L: int, seed: int) -> np.ndarray:
    """The psMNIST permutation: one fixed shuffle of the L pixel positions, drawn from `seed`."""
    return np.random.default_rng(seed).permutation(L)


def image_task(
    name: str,
    train: tuple[np.ndarray, np.ndarray],  # (N, L, C) uint8, (N,)
    test: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    val_size: int,
    split_seed: int,
    normalize: bool,
    permutation: np.ndarray | None = None,
    info: dict | None = None,
) -> Task:
    """Train / val / test PixelDatasets from uint8 arrays; val carved from train."""
    x_train, y_train = train
    tr, va = carve_val(len(y_train), val_size, split_seed)
    mean = std = None
    if normalize:  # per-channel statistics of the training images (val excluded), in [0, 1] units
        mean, std = channel_stats(x_train[tr])
    make = lambda x, y: PixelDataset(x, y, mean, std, permutation)  # noqa: E731
    L, C = x_train.shape[1:]
    return Task(
        name=name,
        kind="classify",
        train=make(x_train[tr], y_train[tr]),
        val=make(x_train[va], y_train[va]) if val_size > 0 else None,
        test=make(*test),
        d_output=n_classes,
        d_input=C,
        l_max=L,
        info={"val_size": val_size, "split_seed": split_seed, "normalize": normalize, "mean": mean, "std": std}
        | (info or {}),
    )


# ---------------------------------------------------------------------------------------------------- MNIST
def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file (MNIST's format): magic 0x0000 08 <ndim>, ndim big-endian int32 sizes, then uint8 data."""
    raw = _read_bytes(path)
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX file ({len(raw)} bytes; expected a {4 + 4 * ndim}-byte header)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise ValueError(
            f"{path}: not an IDX uint8 file with {ndim} dimensions (magic {magic:#x}, expected {0x0800 + ndim:#x})"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise ValueError(
            f"{path}: truncated or padded IDX file: header says {shape} = {int(np.prod(shape))} bytes, "
            f"found {len(body)}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:  # EOFError / BadGzipFile: truncated or not gzip
        raise ValueError(f"{path}: cannot read ({type(e).__name__}: {e})") from e


def _load_npz(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            absent = [k for k in keys if k not in z.files]
            if absent:
                raise ValueError(f"{path}: missing arrays {absent}; expected {keys}, found {z.files}")
            return {k: z[k] for k in keys}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, ValueError) and str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable .npz ({type(e).__name__}: {e}); expected arrays {keys}") from e


def load_mnist(data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """MNIST as uint8 arrays: x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28), y_test (10000,)."""
    root = resolve_data_dir(data_dir)
    keys = ["x_train", "y_train", "x_test", "y_test"]
    for npz in (root / "mnist" / "mnist.npz", root / "mnist.npz"):
        if npz.is_file():
            arrays = _load_npz(npz, keys)
            return _check_images(arrays, npz, (28, 28), 10)
    folders = [root, root / "mnist", root / "MNIST" / "raw"]
    found = {k: find_file(folders, name) for k, name in IDX_FILES.items()}
    if all(found.values()):
        arrays = {k: read_idx(p, 3 if k.endswith("x") else 1) for k, p in found.items()}
        arrays = {
            "x_train": arrays["train_x"],
            "y_train": arrays["train_y"],
            "x_test": arrays["test_x"],
            "y_test": arrays["test_y"],
        }
        return _check_images(arrays, found["train_x"].parent, (28, 28), 10)
    absent = [IDX_FILES[k] for k, p in found.items() if p is None]
    note = f"(IDX files not found: {absent})" if any(found.values()) else ""
    raise missing(
        "MNIST",
        root,
        ["mnist/mnist.npz  (or mnist.npz)"] + [f"mnist/{n}[.gz]" for n in IDX_FILES.values()],
        MNIST_SOURCE,
        note,
    )


def _check_images(arrays: dict[str, np.ndarray], where: Path, hw: tuple[int, ...], n_classes: int) -> dict:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape[1:] != hw or len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"{where}: {split} images must be uint8 (N, {', '.join(map(str, hw))}) with N labels, got "
                f"{x.dtype} {x.shape} and {y.shape} labels"
            )
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"{where}: {split} labels must be in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    return arrays


def smnist_task(
    data_dir: str | os.PathLike | None = None,
    permute: bool = False,
    perm_seed: int = 0,
    val_size: int = 6000,
    split_seed: int = 0,
    normalize: bool = False,
) -> Task:
    """Sequential MNIST (x float (784, 1)); `permute=True` gives psMNIST with the permutation drawn from `perm_seed`."""
    m = load_mnist(data_dir)
    flat = lambda x: x.reshape(len(x), 784, 1)  # noqa: E731  row-major raster scan
    perm = fixed_permutation(784, perm_seed) if permute else None
    return image_task(
        "psmnist" if permute else "smnist",
        (flat(m["x_train"]), m["y_train"]),
        (flat(m["x_test"]), m["y_test"]),
        n_classes=10,
        val_size=val_size,
        split_seed=split_seed,
        normalize=normalize,
        permutation=perm,
        info={"permutation": perm, "perm_seed": perm_seed if permute else None},
    )


def psmnist_task(
    data_dir: str | os.PathLike | None = None,
    perm_seed: int = 0,
    val_size: int = 6000,
    split_seed: int = 0,
    normalize: bool = False,
) -> Task:
    """Permuted sequential MNIST: one fixed permutation of the 784 pixel positions, the same for every image."""
    return smnist_task(data_dir, True, perm_seed, val_size, split_seed, normalize)


# ---------------------------------------------------------------------------------------------------- CIFAR-10
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickled dicts of numpy arrays: refuse any other global, so a hostile file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("copyreg", "_reconstructor"),
    }

    def find_class(self, module: str, name: str) -> Callable:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR-10 batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: {b'data': uint8 (N, 3072) = R plane, G plane, B plane, b'labels': [N]}.

    Returns images (N, 32, 32, 3) uint8 (channels last) and labels (N,) int64.
    """
    try:
        d = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable CIFAR-10 python batch ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ValueError(f"{path}: a CIFAR-10 batch is a dict with b'data' and b'labels'")
    data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise ValueError(
            f"{path}: b'data' must be uint8 (N, 3072) with N labels, got {data.dtype} {data.shape}, "
            f"{len(labels)} labels"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Colour CIFAR-10 from the python batches: x_train (50000, 32, 32, 3) uint8, y_train, x_test, y_test."""
    root = resolve_data_dir(data_dir)
    for folder in (root / "cifar-10-batches-py", root / "cifar10" / "cifar-10-batches-py"):
        if folder.is_dir():
            absent = [b for b in CIFAR_BATCHES if not (folder / b).is_file()]
            if absent:
                raise missing("CIFAR-10", folder, CIFAR_BATCHES, CIFAR_SOURCE, f"(missing in {folder}: {absent})")
            parts = [read_cifar_batch(folder / b) for b in CIFAR_BATCHES]
            arrays = {
                "x_train": np.concatenate([p[0] for p in parts[:5]]),
                "y_train": np.concatenate([p[1] for p in parts[:5]]),
                "x_test": parts[5][0],
                "y_test": parts[5][1],
            }
            return _check_images(arrays, folder, (32, 32, 3), 10)
    raise missing("CIFAR-10 (colour)", root, [f"cifar-10-batches-py/{b}" for b in CIFAR_BATCHES], CIFAR_SOURCE)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> uint8 (...): round(0.2989 R + 0.5870 G + 0.1140 B), the LRA Image conversion."""
    w = np.asarray(GREY_WEIGHTS, dtype=np.float64)
    return np.clip(np.rint(rgb.astype(np.float64) @ w), 0, 255).astype(np.uint8)


def load_cifar10_grey(data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Grey CIFAR-10 (x_train (50000, 32, 32) uint8, ...) from cifar10_gray.npz, else from the python batches."""
    root = resolve_data_dir(data_dir)
    for npz in (root / "cifar10_gray" / "cifar10_gray.npz", root / "cifar10_gray.npz"):
        if npz.is_file():
            return _check_images(_load_npz(npz, ["x_train", "y_train", "x_test", "y_test"]), npz, (32, 32), 10)
    try:
        colour = load_cifar10(root)
    except FileNotFoundError:
        raise missing(
            "CIFAR-10 (grey)",
            root,
            ["cifar10_gray/cifar10_gray.npz  (or cifar10_gray.npz)"]
            + [f"cifar-10-batches-py/{b}" for b in CIFAR_BATCHES],
            CIFAR_SOURCE + "; grey = round(0.2989 R + 0.5870 G + 0.1140 B) is computed here",
        ) from None
    return {k: to_grey(v) if k.startswith("x") else v for k, v in colour.items()}


def scifar_task(
    data_dir: str | os.PathLike | None = None,
    grey: bool = False,
    val_size: int = 5000,
    split_seed: int = 0,
    normalize: bool = False,
) -> Task:
    """Sequential CIFAR-10: colour x float (1024, 3), or with `grey=True` x float (1024, 1) (= LRA Image)."""
    if grey:
        c = load_cifar10_grey(data_dir)
        flat = lambda x: x.reshape(len(x), 1024, 1)  # noqa: E731
    else:
        c = load_cifar10(data_dir)
        flat = lambda x: x.reshape(len(x), 1024, 3)  # noqa: E731  rows, then columns; channels last
    return image_task(
        "scifar_gray" if grey else "scifar",
        (flat(c["x_train"]), c["y_train"]),
        (flat(c["x_test"]), c["y_test"]),
        n_classes=10,
        val_size=val_size,
        split_seed=split_seed,
        normalize=normalize,
    )


def scifar_gray_task(
    data_dir: str | os.PathLike | None = None, val_size: int = 5000, split_seed: int = 0, normalize: bool = False
) -> Task:
    """LRA Image: grey sequential CIFAR-10, L = 1024, one channel."""
    return scifar_task(data_dir, True, val_size, split_seed, normalize)
