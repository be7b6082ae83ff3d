"""LRA Pathfinder and Path-X: are the two dots joined by one dashed path? (Tay et al. 2021, "Long Range Arena",
sec. 3.5; the task of Linsley et al. 2018, "Learning long-range spatial dependencies with horizontal gated recurrent
units".)

A grey R x R image, flattened row by row: x float (R * R, 1), pixels / 255 in [0, 1], or with `normalize=True`
(x - 0.5) / 0.5 in [-1, 1] (the S4 code's normalisation); y long () = 1 when the dots are connected. Pathfinder is
R = 32 (L = 1024) in LRA, also 64, 128, 256; Path-X is Pathfinder at R = 128 (L = 16384), hardest difficulty.

Splits: LRA ships one pool per difficulty; as the LRA and S4 code, it is split 80 / 10 / 10 % into train / val / test
by a seeded permutation (`split_seed`).

Files, per resolution R and difficulty ("easy" = curv_baseline, "intermediate" = curv_contour_length_9, "hard" =
curv_contour_length_14), the layout of the LRA release (lra_release/pathfinderR/<difficulty folder>/):
    imgs/<batch>/sample_<i>.png        R x R grey PNG
    metadata/<batch>.npy               one row per image: [imgs/<batch>, sample_<i>.png, i, label, ...]
The metadata files are read either as numpy arrays (string rows) or as whitespace-separated text (the LRA release's
.npy files are plain text despite their name). Images are read on access (Path-X is 200000 x 128 x 128), so only the
metadata is read when the task is built; each listed PNG must exist. Looked for in the data folder, pathfinder/,
lra_release/ and lra_release/lra_release/. Also read: pathfinderR/pathfinderR_cl14.npz (x (N, R, R) uint8, y (N,))
as in ../shared/data, for "hard" (cl9 / baseline for the others); `source="auto"` prefers the npz when both exist.

`generate_pathfinder` is our own generator of the task at small resolutions (see its docstring): seeded, no files.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, check_split_sizes, missing, resolve_data_dir
from ssmkit.data.images import PixelDataset

PATHFINDER_SOURCE = (
    "the Long Range Arena release (lra_release.gz, linked from google-research/long-range-arena on GitHub): "
    "lra_release/pathfinder{32,64,128,256}/curv_{baseline,contour_length_9,contour_length_14}/; or render it with the "
    "public Pathfinder generator (Linsley et al. 2018)"
)
DIFFICULTIES = {"easy": "curv_baseline", "intermediate": "curv_contour_length_9", "hard": "curv_contour_length_14"}
NPZ_TAGS = {"easy": "baseline", "intermediate": "cl9", "hard": "cl14"}
RESOLUTIONS = (32, 64, 128, 256)
SPLIT = (0.8, 0.1, 0.1)


# ---------------------------------------------------------------------------------------------------- reading
class PngFiles(Dataset):
    """Pathfinder PNGs read on access; item i is (x float (R * R, 1), y long ())."""

    def __init__(self, paths: list[Path], labels: np.ndarray, resolution: int, normalize: bool) -> None:
        self.paths, self.resolution, self.normalize = paths, resolution, normalize
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        pixels = read_png(self.paths[i], self.resolution)  # (R, R) uint8
        x = torch.tensor(pixels, dtype=torch.float32).reshape(-1, 1) / 255.0  # (L, 1)
        if self.normalize:
            x = (x - 0.5) / 0.5
        return x, self.labels[i]


def read_png(path: Path, resolution: int) -> np.ndarray:
    """One Pathfinder image as uint8 (R, R); colour or alpha images are converted to grey."""
    from PIL import Image, UnidentifiedImageError  # data/ only: Pillow is in the `train` extra

    try:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("L") if im.mode != "L" else im)
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: not a readable PNG ({type(e).__name__}: {e})") from e
    if pixels.shape != (resolution, resolution):
        raise ValueError(f"{path}: expected a {resolution} x {resolution} image, got {pixels.shape}")
    return pixels


def read_metadata(path: Path) -> list[tuple[str, str, int]]:
    """Rows (image folder, file name, label) of one metadata file, numpy or text."""
    try:
        rows = np.load(path, allow_pickle=False)
        rows = [list(map(str, r)) for r in np.atleast_2d(rows)]
    except (ValueError, OSError, EOFError):  # the LRA release's metadata/*.npy are whitespace-separated text
        try:
            rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: neither a numpy array nor text metadata ({type(e).__name__}: {e})") from e
    out = []
    for k, r in enumerate(rows):
        if len(r) < 4 or r[3] not in ("0", "1"):
            raise ValueError(f"{path}: row {k} is not [imgs/<batch>, sample_<i>.png, i, label (0/1), ...]: {r[:5]}")
        out.append((r[0], r[1], int(r[3])))
    if not out:
        raise ValueError(f"{path}: no rows")
    return out


def _split(n: int, split_seed: int, where: Path) -> list[np.ndarray]:
    """Indices of train / val / test, 80 / 10 / 10 % by a seeded permutation; an empty split is an error."""
    order = np.random.default_rng(split_seed).permutation(n)
    n_train, n_val = int(round(SPLIT[0] * n)), int(round(SPLIT[1] * n))
    parts = [np.sort(order[:n_train]), np.sort(order[n_train : n_train + n_val]), np.sort(order[n_train + n_val :])]
    empty = [name for name, idx in zip(("train", "val", "test"), parts, strict=True) if len(idx) == 0]
    if empty:
        raise ValueError(
            f"{where}: {n} images leave the {', '.join(empty)} split(s) empty under the 80 / 10 / 10 % split; "
            "expected a Pathfinder pool of at least 10 images"
        )
    return parts


def _candidates(root: Path, resolution: int) -> list[Path]:
    name = f"pathfinder{resolution}"
    return [
        root / name,
        root / "pathfinder" / name,
        root / "lra_release" / name,
        root / "lra_release" / "lra_release" / name,
    ]


def pathfinder_task(
    data_dir: str | os.PathLike | None = None,
    resolution: int = 32,
    difficulty: str = "hard",
    source: str = "auto",
    split_seed: int = 0,
    normalize: bool = False,
) -> Task:
    """LRA Pathfinder at `resolution` (32, 64, 128, 256) and `difficulty` (easy, intermediate, hard)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {list(DIFFICULTIES)}, got {difficulty!r}")
    if source not in ("auto", "images", "npz"):
        raise ValueError(f"source must be 'auto', 'images' or 'npz', got {source!r}")
    root = resolve_data_dir(data_dir)
    folders = _candidates(root, resolution)
    npz_name = f"pathfinder{resolution}_{NPZ_TAGS[difficulty]}.npz"
    npz = next((f / npz_name for f in folders if (f / npz_name).is_file()), None)
    layout = next(
        (f / DIFFICULTIES[difficulty] for f in folders if (f / DIFFICULTIES[difficulty] / "metadata").is_dir()), None
    )
    name = "pathx" if resolution == 128 and difficulty == "hard" else f"pathfinder{resolution}"
    if npz is not None and source in ("auto", "npz"):
        return _npz_task(name, npz, resolution, split_seed, normalize)
    if layout is not None and source in ("auto", "images"):
        return _layout_task(name, layout, resolution, split_seed, normalize)
    expected = [
        f"pathfinder{resolution}/{DIFFICULTIES[difficulty]}/metadata/<batch>.npy",
        f"pathfinder{resolution}/{DIFFICULTIES[difficulty]}/imgs/<batch>/sample_<i>.png",
    ]
    if source != "images":
        expected.append(f"pathfinder{resolution}/{npz_name}")
    raise missing(
        f"LRA Pathfinder {resolution} ({difficulty})",
        root,
        expected,
        PATHFINDER_SOURCE,
        "(also looked under pathfinder/, lra_release/ and lra_release/lra_release/)",
    )


def _npz_task(name: str, path: Path, resolution: int, split_seed: int, normalize: bool) -> Task:
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:  # BadZipFile: truncated
        raise ValueError(
            f"{path}: expected an .npz with x (N, {resolution}, {resolution}) uint8 and y (N,) 0/1 "
            f"({type(e).__name__}: {e})"
        ) from e
    if (
        x.dtype != np.uint8
        or x.shape[1:] != (resolution, resolution)
        or len(x) != len(y)
        or not set(np.unique(y)) <= {0, 1}
    ):
        raise ValueError(
            f"{path}: expected x (N, {resolution}, {resolution}) uint8 and y (N,) in 0/1, got x {x.dtype} "
            f"{x.shape}, y {y.shape} with values {np.unique(y)[:5]}"
        )
    parts = _split(len(y), split_seed, path)  # an empty or too small pool is an error here
    pixels = x.reshape(len(x), -1, 1)  # (N, L, 1)
    mean, std = (np.array([0.5]), np.array([0.5])) if normalize else (None, None)
    parts = [PixelDataset(pixels[idx], y[idx], mean, std) for idx in parts]
    return _task(name, parts, resolution, {"source": str(path), "split_seed": split_seed, "normalize": normalize})


def _layout_task(name: str, folder: Path, resolution: int, split_seed: int, normalize: bool) -> Task:
    meta_files = sorted((folder / "metadata").glob("*.npy"), key=lambda p: (len(p.stem), p.stem))
    if not meta_files:
        raise ValueError(
            f"{folder / 'metadata'}: no <batch>.npy metadata files; expected the LRA Pathfinder layout "
            "imgs/<batch>/sample_<i>.png + metadata/<batch>.npy"
        )
    paths, labels = [], []
    for meta in meta_files:
        for sub, file, label in read_metadata(meta):
            paths.append(folder / sub / file)
            labels.append(label)
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise ValueError(f"{folder}: {len(absent)} images listed in metadata/ are missing, e.g. {absent[0]}")
    labels = np.array(labels)
    parts = [
        PngFiles([paths[i] for i in idx], labels[idx], resolution, normalize)
        for idx in _split(len(paths), split_seed, folder)
    ]
    return _task(name, parts, resolution, {"source": str(folder), "split_seed": split_seed, "normalize": normalize})


def _task(name: str, parts: list[Dataset], resolution: int, info: dict) -> Task:
    return Task(
        name=name,
        kind="classify",
        train=parts[0],
        val=parts[1],
        test=parts[2],
        d_output=2,
        d_input=1,
        l_max=resolution * resolution,
        info=info,
    )


def pathx_task(
    data_dir: str | os.PathLike | None = None,
    difficulty: str = "hard",
    source: str = "auto",
    split_seed: int = 0,
    normalize: bool = False,
) -> Task:
    """LRA Path-X: Pathfinder at 128 x 128 (L = 16384)."""
    return pathfinder_task(data_dir, 128, difficulty, source, split_seed, normalize)


# ---------------------------------------------------------------------------------------------------- generating
def _walk(rng: np.random.Generator, R: int, length: int, max_turn: float) -> np.ndarray | None:
    """A smooth random walk of `length` distinct, 8-connected pixels (length, 2) inside [1, R - 2]^2, or None."""
    start = rng.uniform(1, R - 2, size=2)
    theta = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.uniform(-max_turn, max_turn, size=2 * length))
    steps = 0.9 * np.stack([np.cos(theta), np.sin(theta)], 1)  # < 1 pixel per step: rounding stays 8-connected
    pos = np.rint(np.concatenate([start[None], start + np.cumsum(steps, 0)])).astype(np.int64)  # (2 length + 1, 2)
    moved = np.concatenate([[True], (pos[1:] != pos[:-1]).any(1)])
    path = pos[moved][:length]  # consecutive duplicates dropped
    if len(path) < length or path.min() < 1 or path.max() > R - 2:
        return None
    if len(np.unique(path[:, 0] * R + path[:, 1])) < length:  # never revisit: the dashes follow the path order
        return None
    return path


def _place(rng, R, length, occupied, clearance, max_turn, tries=50):
    """A walk whose pixels are at Chebyshev distance > clearance from every occupied pixel, or None.

    One more than `clearance` so that the 3 x 3 dots on path ends also keep `clearance` from other paths.
    """
    forbidden = _dilate(occupied, clearance)
    for _ in range(tries):
        path = _walk(rng, R, length, max_turn)
        if path is None:
            continue
        if not forbidden[path[:, 0], path[:, 1]].any():
            return path
    return None


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within Chebyshev distance `radius` of a True pixel of `mask`."""
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    n_rows, n_cols = mask.shape
    for dr in range(2 * radius + 1):
        for dc in range(2 * radius + 1):
            out |= padded[dr : dr + n_rows, dc : dc + n_cols]
    return out


def generate_pathfinder(
    n: int,
    resolution: int = 32,
    contour_length: int | None = None,
    n_distractors: int = 4,
    distractor_length: int | None = None,
    dash: tuple[int, int] = (2, 1),
    max_turn: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our Pathfinder at small resolutions: images uint8 (n, R, R), labels (n,), dots (n, 2, 2) (row, col).

    Each image has two main dashed paths of `contour_length` pixels (default 0.6 R) and `n_distractors` shorter ones
    (`distractor_length`, default contour_length // 2), smooth random walks (turn <= max_turn rad per step). Dashes
    are `dash[0]` pixels on, `dash[1]` off along each path. Two dots (3 x 3 squares) sit on path ends: both on the
    first main path (label 1, connected), or one on each main path (label 0). Every path keeps a Chebyshev distance of
    at least dash[1] + 2 from every other path and dot, so two pixels within dash[1] + 1 of each other always belong
    to the same path: connectivity is well defined on the image itself. Image i depends only on (seed, i).
    """
    R = resolution
    if R < 16:
        raise ValueError(f"resolution must be >= 16 for the generator, got {R}")
    on, off = dash
    if on < 1 or off < 0:
        raise ValueError(f"dash must be (on >= 1, off >= 0) pixels, got {dash}")
    length = contour_length or int(0.6 * R)
    d_length = distractor_length or max(3, length // 2)
    clearance = off + 2
    images = np.zeros((n, R, R), dtype=np.uint8)
    labels = np.zeros(n, dtype=np.int64)
    dots = np.zeros((n, 2, 2), dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        label = int(rng.integers(2))
        for _ in range(100):  # redraw the whole image until both main paths fit
            occupied = np.zeros((R, R), dtype=bool)
            image = np.zeros((R, R), dtype=np.uint8)
            mains = []
            for _ in range(2):
                path = _place(rng, R, length, occupied, clearance, max_turn)
                if path is None:
                    break
                mains.append(path)
                _mark(occupied, path, dots_at=[path[0], path[-1]])  # both ends kept clear as if dotted
            if len(mains) == 2:
                break
        else:
            raise ValueError(f"cannot fit two paths of {length} pixels at resolution {R}; use a shorter contour_length")
        for path in mains:
            _draw(image, path, on, off)
        ends = [mains[0][0], mains[0][-1]] if label else [mains[0][0], mains[1][-1]]
        for r, c in ends:
            image[r - 1 : r + 2, c - 1 : c + 2] = 255
        for _ in range(n_distractors):
            path = _place(rng, R, d_length, occupied, clearance, max_turn)
            if path is not None:
                _mark(occupied, path)
                _draw(image, path, on, off)
        images[i], labels[i], dots[i] = image, label, ends
    return images, labels, dots


def _mark(occupied: np.ndarray, path: np.ndarray, dots_at: list = ()) -> None:
    occupied[path[:, 0], path[:, 1]] = True
    for r, c in dots_at:
        occupied[r - 1 : r + 2, c - 1 : c + 2] = True


def _draw(image: np.ndarray, path: np.ndarray, on: int, off: int) -> None:
    """The path dashed: `on` pixels drawn, `off` skipped, along the path; its last pixel always drawn."""
    k = np.arange(len(path))
    keep = (k % (on + off) < on) | (k == len(path) - 1)
    image[path[keep, 0], path[keep, 1]] = 255


def pathfinder_synthetic_task(
    n_train: int = 8000,
    n_val: int = 1000,
    n_test: int = 1000,
    resolution: int = 32,
    contour_length: int | None = None,
    n_distractors: int = 4,
    seed: int = 0,
    normalize: bool = False,
) -> Task:
    """Pathfinder drawn by `generate_pathfinder` (no files); train, val, test are consecutive images of `seed`."""
    check_split_sizes(n_train, n_val, n_test)
    images, labels, _ = generate_pathfinder(
        n_train + n_val + n_test, resolution, contour_length, n_distractors, seed=seed
    )
    pixels = images.reshape(len(images), -1, 1)
    mean, std = (np.array([0.5]), np.array([0.5])) if normalize else (None, None)
    cuts = np.cumsum([0, n_train, n_val, n_test])
    parts = [PixelDataset(pixels[cuts[k] : cuts[k + 1]], labels[cuts[k] : cuts[k + 1]], mean, std) for k in range(3)]
    task = _task("pathfinder_synthetic", parts, resolution, {"seed": seed, "normalize": normalize})
    if n_val == 0:
        task.val = None
    return task
