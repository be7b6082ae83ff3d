"""Time-series classification from the UCR / UEA archives, read from their .ts text format.

The .ts format (Bagnall et al., "The UEA multivariate time series classification archive, 2018", arXiv:1811.00075, and
the archive at timeseriesclassification.com; also what the aeon / sktime packages read and ship):

    # comment lines
    @problemName GunPoint
    @timeStamps false
    @missing false
    @univariate true            (false: several channels, @dimensions C)
    @equalLength true           (false: series of different lengths)
    @seriesLength 150
    @classLabel true 1 2        (the class labels, as strings)
    @data
    v,v,v,...:v,v,v,...:label   (one case per line: C channels separated by ':', then the label)

Missing values are '?' or 'NaN'. Labels are strings, mapped to 0..K-1 in the order of the @classLabel line. What happens
to missing values is the `fill_missing` option, never silent: "error" (the default) refuses the file naming the line,
"zero" writes 0, "interpolate" fills each channel linearly between its neighbours (the nearest value at either end).

Items: x float (L_i, C), y long (). Series of unequal length make a `variable_length` task, batched by `pad_collate`.
UCR / UEA give train and test files only; `val_fraction` holds out a seeded, per-class fraction of train as validation.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, missing, resolve_data_dir

UCR_SOURCE = (
    "the UCR / UEA time series classification archive, timeseriesclassification.com (Univariate_ts.zip / "
    "Multivariate_ts.zip, one folder per dataset holding <Name>_TRAIN.ts and <Name>_TEST.ts)"
)
LAYOUTS = ("ucr/{name}", "{name}", "Univariate_ts/{name}", "Multivariate_ts/{name}")
FILL_MISSING = ("error", "zero", "interpolate")


@dataclass
class TsFile:
    """The contents of one .ts file: one (L_i, C) array and one label string per case."""

    path: Path
    problem: str
    class_labels: list[str]
    series: list[np.ndarray]  # (L_i, C) float64, NaN where missing
    labels: list[str]
    lines: list[int]  # the line number of each case, for error messages

    @property
    def n_channels(self) -> int:
        return self.series[0].shape[1]


def _flag(path: Path, line_no: int, tag: str, words: list[str]) -> bool:
    if len(words) < 1 or words[0].lower() not in ("true", "false"):
        raise ValueError(f"{path}, line {line_no}: @{tag} must be followed by true or false, got {' '.join(words)!r}")
    return words[0].lower() == "true"


def _int(path: Path, line_no: int, tag: str, words: list[str]) -> int:
    if len(words) != 1 or not words[0].isdigit():
        raise ValueError(f"{path}, line {line_no}: @{tag} must be followed by one positive integer, got {words}")
    return int(words[0])


def read_ts(path: Path) -> TsFile:
    """Parse a .ts classification file; every departure from the format is a ValueError naming the file and line."""
    header: dict[str, object] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    lines: list[int] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(
                        f"{path}, line {line_no}: expected a @tag or # comment before @data, got {line[:40]!r}"
                    )
                tag, *words = line[1:].split()
                tag = tag.lower()
                if tag == "data":
                    in_data = True
                elif tag == "problemname":
                    header["problem"] = " ".join(words)
                elif tag in ("timestamps", "missing", "univariate", "equallength", "targetlabel"):
                    header[tag] = _flag(path, line_no, tag, words)
                elif tag in ("dimensions", "serieslength"):
                    header[tag] = _int(path, line_no, tag, words)
                elif tag == "classlabel":
                    if _flag(path, line_no, tag, words) and len(words) < 2:
                        raise ValueError(f"{path}, line {line_no}: @classLabel true must list the class labels")
                    header["classlabel"] = words[1:] if words[0].lower() == "true" else None
                else:
                    raise ValueError(f"{path}, line {line_no}: unknown header tag @{tag}")
                continue
            if "classlabel" not in header or header["classlabel"] is None:
                raise ValueError(f"{path}: no '@classLabel true <labels>' line before @data; not a classification file")
            if header.get("timestamps"):
                raise ValueError(
                    f"{path}: @timeStamps true (timestamped values) is not supported; expected plain values"
                )
            *channels, label = line.split(":")
            if not channels:
                raise ValueError(
                    f"{path}, line {line_no}: expected '<values>[:<values>...]:<label>', got {line[:40]!r}"
                )
            if label.strip() not in header["classlabel"]:
                raise ValueError(
                    f"{path}, line {line_no}: label {label.strip()!r} is not one of @classLabel {header['classlabel']}"
                )
            try:
                arrays = [_values(c) for c in channels]
            except ValueError as e:
                raise ValueError(f"{path}, line {line_no}: {e}") from e
            if len({len(a) for a in arrays}) != 1:
                raise ValueError(
                    f"{path}, line {line_no}: channels of one case have different lengths {[len(a) for a in arrays]}"
                )
            series.append(np.stack(arrays, axis=1))  # (L_i, C)
            labels.append(label.strip())
            lines.append(line_no)
    if not in_data:
        raise ValueError(f"{path}: no @data line; expected a .ts header ending in @data, then one case per line")
    if not series:
        raise ValueError(f"{path}: @data is followed by no cases; the file is empty or truncated")
    _check_header(path, header, series, lines)
    return TsFile(path, str(header.get("problem", path.stem)), list(header["classlabel"]), series, labels, lines)


def _values(text: str) -> np.ndarray:
    vals = []
    for v in text.split(","):
        v = v.strip()
        if v in ("?", "") or v.lower() == "nan":
            vals.append(math.nan)
        else:
            vals.append(float(v))  # ValueError names the bad token
    return np.asarray(vals, dtype=np.float64)


def _check_header(path: Path, header: dict, series: list[np.ndarray], lines: list[int]) -> None:
    channels = {s.shape[1] for s in series}
    if len(channels) != 1:
        raise ValueError(f"{path}: cases have different numbers of channels {sorted(channels)}")
    (c,) = channels
    if header.get("univariate") is True and c != 1:
        raise ValueError(f"{path}: @univariate true but cases have {c} channels")
    if "dimensions" in header and header["dimensions"] != c:
        raise ValueError(f"{path}: @dimensions {header['dimensions']} but cases have {c} channels")
    lengths = [s.shape[0] for s in series]
    if header.get("equallength") is True and len(set(lengths)) != 1:
        raise ValueError(f"{path}: @equalLength true but the series have lengths {min(lengths)}..{max(lengths)}")
    if "serieslength" in header:
        for s, line_no in zip(series, lines, strict=True):
            if s.shape[0] != header["serieslength"]:
                raise ValueError(
                    f"{path}, line {line_no}: a series of length {s.shape[0]}, @seriesLength says "
                    f"{header['serieslength']}; the line is truncated or the header is wrong"
                )


def fill_nan(series: np.ndarray, how: str) -> np.ndarray:
    """Fill NaNs of one (L, C) series: "zero", or "interpolate" linearly per channel (nearest value at the ends)."""
    out = series.copy()
    for c in range(out.shape[1]):
        col = out[:, c]
        bad = np.isnan(col)
        if not bad.any():
            continue
        if how == "zero" or bad.all():
            col[bad] = 0.0
        else:
            t = np.arange(len(col))
            col[bad] = np.interp(t[bad], t[~bad], col[~bad])
    return out


class SeriesDataset(Dataset):
    """(x (L_i, C) float, y () long) pairs from a list of series."""

    def __init__(self, xs: list[Tensor], ys: Tensor) -> None:
        self.xs, self.ys = xs, ys

    def __len__(self) -> int:
        return len(self.xs)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.xs[i], self.ys[i]


def find_ts_files(name: str, root: Path) -> tuple[Path, Path]:
    for layout in LAYOUTS:
        folder = root / layout.format(name=name)
        train, test = folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"
        if train.is_file() and test.is_file():
            return train, test
    expected = [f"{layout.format(name=name)}/{name}_{s}.ts" for layout in LAYOUTS for s in ("TRAIN", "TEST")]
    raise missing(f"ucr:{name}", root, expected, UCR_SOURCE, note="both the _TRAIN.ts and the _TEST.ts file are needed")


def _to_tensors(ts: TsFile, fill_missing: str) -> tuple[list[Tensor], Tensor]:
    xs = []
    for s, line_no in zip(ts.series, ts.lines, strict=True):
        if np.isnan(s).any():
            if fill_missing == "error":
                raise ValueError(
                    f"{ts.path}, line {line_no}: missing values ('?' or NaN); choose how to fill them with the option "
                    f"fill_missing='zero' or 'interpolate'"
                )
            s = fill_nan(s, fill_missing)
        xs.append(torch.from_numpy(s).float())  # (L_i, C)
    ys = torch.tensor([ts.class_labels.index(lbl) for lbl in ts.labels], dtype=torch.long)
    return xs, ys


def stratified_holdout(ys: Tensor, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (keep, held out): round(fraction * n_k) of each class k, chosen by a seeded permutation."""
    g = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for k in torch.unique(ys).tolist():
        idx = torch.nonzero(ys == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)].tolist()
        n_held = round(fraction * len(idx))
        held += idx[:n_held]
        keep += idx[n_held:]
    return sorted(keep), sorted(held)


def ucr_task(
    data_dir: str | os.PathLike | None = None,
    dataset: str = "GunPoint",
    fill_missing: str = "error",
    normalize: bool = False,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Task:
    """A UCR / UEA classification dataset by its archive name (e.g. GunPoint, PLAID, JapaneseVowels).

    normalize: standardise each channel with the mean and std of all train values (the archive's series are usually
    z-normalised already, so the default leaves them as they are).
    """
    if fill_missing not in FILL_MISSING:
        raise ValueError(f"fill_missing must be one of {FILL_MISSING}, got {fill_missing!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    train_path, test_path = find_ts_files(dataset, resolve_data_dir(data_dir))
    train_ts, test_ts = read_ts(train_path), read_ts(test_path)
    if train_ts.class_labels != test_ts.class_labels:
        raise ValueError(
            f"{train_path} and {test_path} declare different @classLabel lists: "
            f"{train_ts.class_labels} vs {test_ts.class_labels}"
        )
    if train_ts.n_channels != test_ts.n_channels:
        raise ValueError(f"{train_path} has {train_ts.n_channels} channels, {test_path} {test_ts.n_channels}")
    train_x, train_y = _to_tensors(train_ts, fill_missing)
    test_x, test_y = _to_tensors(test_ts, fill_missing)
    if normalize:
        allv = torch.cat(train_x)  # (sum L_i, C)
        mean, std = allv.mean(0), allv.std(0).clamp_min(1e-8)
        train_x = [(x - mean) / std for x in train_x]
        test_x = [(x - mean) / std for x in test_x]

    val = None
    if val_fraction > 0:
        keep, held = stratified_holdout(train_y, val_fraction, seed)
        if not held or not keep:
            raise ValueError(
                f"{train_path}: val_fraction={val_fraction} of {len(train_y)} training cases (rounded per class) "
                f"leaves the {'validation' if not held else 'training'} set empty; choose a fraction that keeps both"
            )
        val = SeriesDataset([train_x[i] for i in held], train_y[held])
        train_x, train_y = [train_x[i] for i in keep], train_y[keep]

    lengths = [x.shape[0] for x in train_x + test_x + ([] if val is None else val.xs)]
    return Task(
        name=f"ucr:{dataset}",
        kind="classify",
        train=SeriesDataset(train_x, train_y),
        val=val,
        test=SeriesDataset(test_x, test_y),
        d_output=len(train_ts.class_labels),
        d_input=train_ts.n_channels,
        l_max=max(lengths),
        variable_length=len(set(lengths)) > 1,
        info={"class_labels": train_ts.class_labels, "files": [str(train_path), str(test_path)]},
    )
