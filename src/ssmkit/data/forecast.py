"""Long-horizon forecasting with the Informer protocol: ETTh1, ETTh2, ETTm1, ETTm2, Weather, Exchange rate, ILI.

The protocol is the one of Zhou et al. 2021, "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
Forecasting" (AAAI), Sec. 4 "Experiments" and its public code (Dataset_ETT_hour / Dataset_ETT_minute / Dataset_Custom),
which the S4 paper (Gu et al. 2022, "Efficiently Modeling Long Sequences with Structured State Spaces", its "Time Series
Forecasting" experiments in Sec. 4.3) follows:

- Splits by time. ETT: 12 / 4 / 4 months of 30 days, i.e. rows [0, 8640), [8640, 11520), [11520, 14400) hourly and four
  times that for the 15-minute ETTm files (the rows after 20 months are not used). Other CSVs: the first 70 % train,
  the last 20 % test, the rest validation.
- A window is `input_len` rows of input followed by `horizon` rows to predict. The val and test splits start
  `input_len` rows before their first target row (Informer's `border1s`), so the first val/test target is the first row
  of the split.
- Standardisation per column, mean and standard deviation (ddof = 0) of the train rows only; the metrics (MSE, MAE) are
  computed on the standardised test windows: `forecast_metrics(pred, target)`.
- Features "S": univariate, the target column (OT) in and out; "M": every column in and out; "MS": every column in,
  the target out.

Items: x float (input_len, d_input), y float (horizon, d_output), both standardised. Options:
`pad_future=True` appends `horizon` zero rows to x, (input_len + horizon, d_input), the S4 code's masked-future input
(predict y from the last `horizon` outputs); `time_features=True` appends the Informer calendar features ("timeenc=1":
minute of hour, hour of day, day of week, day of month, day of year / week of year, each scaled to [-0.5, 0.5]) as extra
input channels; `center="last"` subtracts each window's last observed value (per series) from its input values and its
targets, so the model sees the window relative to where it ends (the calendar channels are not shifted; the padded
future is then "no change"). MSE and MAE are differences of prediction and target, so they are the same on the
centred and the standardised scale.

Why `center` and no calendar features for ETTh1 (issue 7): the splits are consecutive 4-month blocks of different
seasons and levels (ETTh1 OT, standardised: val mean -0.17, test mean -1.34, and the same test months a year earlier
-0.76). With one training year, day of year (and day of month) name the date, and the model learns last year's level:
test MSE 0.35 against 0.08 without them at horizon 24 after one epoch, nearly all of it a constant offset
(benchmarks/results.md, ETTh1). On the absolute standardised scale the training year also teaches a mean reversion
towards the train mean (low levels drift up within a day) that the test winter does not have; centring on the last
value takes the absolute level out of the input.

Files: the CSV or gzipped CSV as published, first column `date`, read with the standard library `csv` module.
Note: "weather" here is the 21-variable 2020 Weather CSV of the Autoformer collection (target OT), not the older
12-variable WTH.csv (target WetBulbCelsius) of the Informer paper's Weather rows.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssmkit.data.base import Task, missing, resolve_data_dir

FEATURES = ("S", "M", "MS")
CENTER = (None, "last")  # per-window centring of the values (see the module docstring)
HORIZONS_PAPER = (24, 48, 168, 336, 720)  # Informer / S4 tables (ETTm1 also uses 96, 288, 672)

ETT_SOURCE = (
    "the ETDataset repository (github.com/zhouhaoyi/ETDataset), folder ETT-small: ETTh1.csv, ETTh2.csv, ETTm1.csv, "
    "ETTm2.csv (gzipped copies .csv.gz are read too)"
)
LTSF_SOURCE = (
    "the Autoformer long-term forecasting collection (github.com/thuml/Autoformer, 'all_six_datasets'): "
    "weather/weather.csv, exchange_rate/exchange_rate.csv, illness/national_illness.csv (gzipped copies .csv.gz too)"
)


@dataclass(frozen=True)
class ForecastSpec:
    """Where a dataset's CSV lives and how the Informer protocol splits it."""

    name: str  # task name
    file: str  # CSV file name without .csv / .csv.gz
    folders: tuple[str, ...]  # sub-folders of the data dir to look in ("" = the data dir itself)
    split: str  # "ett_hour" | "ett_minute" | "ratio"
    freq: str  # "t" (minutes), "h", "d", "w": which calendar features
    source: str


SPECS = {
    "etth1": ForecastSpec("etth1", "ETTh1", ("ett", "ETT-small", ""), "ett_hour", "h", ETT_SOURCE),
    "etth2": ForecastSpec("etth2", "ETTh2", ("ett", "ETT-small", ""), "ett_hour", "h", ETT_SOURCE),
    "ettm1": ForecastSpec("ettm1", "ETTm1", ("ett", "ETT-small", ""), "ett_minute", "t", ETT_SOURCE),
    "ettm2": ForecastSpec("ettm2", "ETTm2", ("ett", "ETT-small", ""), "ett_minute", "t", ETT_SOURCE),
    "weather": ForecastSpec("weather", "weather", ("ltsf", "weather", ""), "ratio", "t", LTSF_SOURCE),
    "exchange_rate": ForecastSpec(
        "exchange_rate", "exchange_rate", ("ltsf", "exchange_rate", ""), "ratio", "d", LTSF_SOURCE
    ),
    "national_illness": ForecastSpec(
        "national_illness", "national_illness", ("ltsf", "illness", ""), "ratio", "w", LTSF_SOURCE
    ),
}


# ----------------------------------------------------------------------------------------------------------------------
# reading the CSV


@dataclass(frozen=True)
class Table:
    path: Path
    columns: tuple[str, ...]  # value columns (without `date`)
    dates: tuple[str, ...]  # (T,)
    values: np.ndarray  # (T, C) float64, read-only


def find_csv(spec: ForecastSpec, root: Path) -> Path:
    candidates = [Path(folder) / f"{spec.file}{ext}" for folder in spec.folders for ext in (".csv", ".csv.gz")]
    for rel in candidates:
        if (root / rel).is_file():
            return root / rel
    raise missing(spec.name, root, [str(c) for c in candidates], spec.source)


def read_table(path: Path) -> Table:
    """Read a forecasting CSV (first column `date`, the rest numbers); cached per file and modification time."""
    st = path.stat()
    return _read_table_cached(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _read_table_cached(path_str: str, mtime_ns: int, size: int) -> Table:
    path = Path(path_str)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        # Some headers (weather: 'W/m²') are not UTF-8; the numbers are ASCII, so replacing bad bytes is harmless.
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:
            rows = list(csv.reader(f))
    except (EOFError, OSError, zlib.error) as e:  # truncated or corrupt gzip
        raise ValueError(
            f"{path}: cannot read the CSV ({type(e).__name__}: {e}); the file is truncated or corrupt"
        ) from e
    if not rows or not rows[0]:
        raise ValueError(f"{path}: empty file; expected a header line 'date,<columns>...' and one row per time step")
    header = [h.strip() for h in rows[0]]
    if header[0] != "date" or len(header) < 2:
        raise ValueError(f"{path}: expected the header to start with 'date' and name the value columns, got {header}")
    body = [r for r in rows[1:] if r]  # a trailing empty line is fine
    if not body:
        raise ValueError(f"{path}: header only, no data rows")
    values = np.empty((len(body), len(header) - 1), dtype=np.float64)
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError(
                f"{path}, line {i + 2}: {len(r)} fields, the header has {len(header)}; "
                "the file is truncated or malformed"
            )
        try:
            values[i] = [float(v) for v in r[1:]]
        except ValueError as e:
            raise ValueError(f"{path}, line {i + 2}: non-numeric value ({e})") from e
    values.flags.writeable = False
    return Table(path, tuple(header[1:]), tuple(r[0] for r in body), values)


# ----------------------------------------------------------------------------------------------------------------------
# the protocol


def split_borders(split: str, n_rows: int, input_len: int) -> tuple[list[int], list[int]]:
    """Informer's (border1s, border2s): the row ranges of train / val / test, val and test reaching input_len back."""
    if split in ("ett_hour", "ett_minute"):
        per_month = 30 * 24 * (4 if split == "ett_minute" else 1)
        n_train, n_val, n_test = 12 * per_month, 4 * per_month, 4 * per_month
        if n_rows < n_train + n_val + n_test:
            raise ValueError(f"expected at least {n_train + n_val + n_test} rows (20 months), got {n_rows}")
    elif split == "ratio":
        n_train, n_test = int(n_rows * 0.7), int(n_rows * 0.2)
        n_val = n_rows - n_train - n_test
    else:
        raise ValueError(f"split must be 'ett_hour', 'ett_minute' or 'ratio', got {split!r}")
    starts = [0, n_train - input_len, n_train + n_val - input_len]
    ends = [n_train, n_train + n_val, n_train + n_val + n_test]
    return starts, ends


def parse_date(s: str) -> datetime:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(s.strip(), fmt)
        except ValueError:
            continue
    raise ValueError(f"cannot parse the date {s!r}; expected e.g. '2016-07-01 00:00:00' or '1990/1/1 0:00'")


def calendar_features(dates: list[str] | tuple[str, ...], freq: str) -> np.ndarray:
    """Informer's continuous calendar features ("timeenc=1"), each in [-0.5, 0.5]: (T,) dates -> (T, F)."""
    cols: list[list[float]] = []
    for s in dates:
        d = parse_date(s)
        doy = d.timetuple().tm_yday
        feats = {
            "minute": d.minute / 59.0 - 0.5,
            "hour": d.hour / 23.0 - 0.5,
            "weekday": d.weekday() / 6.0 - 0.5,
            "day": (d.day - 1) / 30.0 - 0.5,
            "yday": (doy - 1) / 365.0 - 0.5,
            "week": (d.isocalendar()[1] - 1) / 52.0 - 0.5,
        }
        names = {
            "t": ("minute", "hour", "weekday", "day", "yday"),
            "h": ("hour", "weekday", "day", "yday"),
            "d": ("weekday", "day", "yday"),
            "w": ("day", "week"),
        }[freq]
        cols.append([feats[n] for n in names])
    return np.asarray(cols, dtype=np.float64)


class ForecastWindows(Dataset):
    """Sliding windows over one split: item i is (x = rows [i, i + L), y = rows [i + L, i + L + horizon)).

    data: (T, C) standardised rows of the split; in_cols / out_cols: column indices; marks: (T, F) calendar features or
    None. Windows start at every row, as in Informer: len = T - L - horizon + 1.
    """

    def __init__(
        self,
        data: Tensor,
        input_len: int,
        horizon: int,
        in_cols: list[int],
        out_cols: list[int],
        marks: Tensor | None = None,
        pad_future: bool = False,
        center: str | None = None,
    ) -> None:
        if center not in CENTER:
            raise ValueError(f"center must be one of {CENTER} (None: no centring), got {center!r}")
        if not set(out_cols) <= set(in_cols):
            raise ValueError(f"out_cols {out_cols} must be among in_cols {in_cols}")
        self.x = data[:, in_cols]  # (T, d_in)
        if marks is not None:
            self.x = torch.cat([self.x, marks], dim=-1)  # (T, d_in + F)
        self.y = data[:, out_cols]  # (T, d_out)
        self.d_values = len(in_cols)  # the first d_values input channels are values, the rest calendar features
        self.out_in = [in_cols.index(c) for c in out_cols]  # where each target column sits among the inputs
        self.input_len, self.horizon, self.pad_future, self.center = input_len, horizon, pad_future, center

    def __len__(self) -> int:
        return max(self.x.shape[0] - self.input_len - self.horizon + 1, 0)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range [0, {len(self)})")
        s = i + self.input_len
        x = self.x[i:s]  # (L, d_input)
        y = self.y[s : s + self.horizon]  # (horizon, d_output)
        if self.center == "last":
            last = x[-1, : self.d_values]  # (d_values,) the last observed value of each series
            x = torch.cat([x[:, : self.d_values] - last, x[:, self.d_values :]], dim=-1)
            y = y - last[self.out_in]
        if self.pad_future:
            x = torch.cat([x, x.new_zeros(self.horizon, x.shape[1])])  # (L + horizon, d_input)
        return x, y


def forecast_task(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    features: str = "S",
    input_len: int = 96,
    horizon: int = 24,
    target: str = "OT",
    time_features: bool = False,
    pad_future: bool = False,
    center: str | None = None,
) -> Task:
    """The Informer-protocol task for one dataset (see the module docstring)."""
    if dataset not in SPECS:
        raise ValueError(f"dataset must be one of {sorted(SPECS)}, got {dataset!r}")
    if features not in FEATURES:
        raise ValueError(
            f"features must be one of {FEATURES} (univariate, multivariate, multi-in/target-out), got {features!r}"
        )
    for arg, v in (("input_len", input_len), ("horizon", horizon)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{arg} must be a positive int, got {v!r}")
    spec = SPECS[dataset]
    table = read_table(find_csv(spec, resolve_data_dir(data_dir)))
    if target not in table.columns:
        raise ValueError(f"{table.path}: no target column {target!r}; the file has columns {list(table.columns)}")
    try:
        starts, ends = split_borders(spec.split, len(table.dates), input_len)
    except ValueError as e:
        raise ValueError(f"{table.path}: {e}; the file is truncated or not the published one") from e
    if starts[1] < 0:
        raise ValueError(f"input_len {input_len} is longer than the train split ({ends[0]} rows)")

    t = table.columns.index(target)
    cols = {"S": [t], "M": list(range(len(table.columns))), "MS": list(range(len(table.columns)))}[features]
    in_cols, out_cols = cols, ([t] if features == "MS" else cols)
    used = table.values[:, cols]  # (T, C)
    train_rows = used[starts[0] : ends[0]]
    mean, std = train_rows.mean(0), train_rows.std(0)  # (C,), fitted on the train split only
    if np.any(std == 0):
        raise ValueError(f"{table.path}: a column is constant over the train split; cannot standardise it")
    data = torch.from_numpy((used - mean) / std).float()  # (T, C) standardised
    marks = torch.from_numpy(calendar_features(table.dates, spec.freq)).float() if time_features else None
    idx_in = list(range(len(cols)))
    idx_out = [cols.index(t)] if features == "MS" else idx_in

    splits = []
    for b1, b2 in zip(starts, ends, strict=True):
        ds = ForecastWindows(
            data[b1:b2],
            input_len,
            horizon,
            idx_in,
            idx_out,
            None if marks is None else marks[b1:b2],
            pad_future,
            center,
        )
        if len(ds) < 1:
            raise ValueError(
                f"{table.path}: a split of {b2 - b1} rows has no window of input_len {input_len} + horizon {horizon}"
            )
        splits.append(ds)
    d_marks = 0 if marks is None else marks.shape[1]
    return Task(
        name=spec.name,
        kind="forecast",
        train=splits[0],
        val=splits[1],
        test=splits[2],
        d_output=len(out_cols),
        d_input=len(in_cols) + d_marks,
        l_max=input_len + (horizon if pad_future else 0),
        info={
            "file": str(table.path),
            "features": features,
            "columns": [table.columns[c] for c in cols],
            "target": target,
            "input_len": input_len,
            "horizon": horizon,
            "pad_future": pad_future,
            "time_features": d_marks,
            "center": center,  # "last": x and y are relative to the window's last observed value
            "borders": (starts, ends),
            "mean": mean,
            "std": std,  # the scaler, fitted on train rows; x_raw = x * std + mean (centred: x + last first)
            "metrics": forecast_metrics,
        },
    )


def forecast_metrics(pred: Tensor | np.ndarray, target: Tensor | np.ndarray) -> dict[str, float]:
    """MSE and MAE over every element, on the standardised scale (as in the Informer and S4 tables).

    pred, target: same shape, e.g. (B, horizon, d_output).
    """
    p = torch.as_tensor(pred, dtype=torch.float64)
    t = torch.as_tensor(target, dtype=torch.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}")
    if p.numel() == 0:
        raise ValueError("pred and target are empty")
    err = p - t
    return {"mse": float(err.pow(2).mean()), "mae": float(err.abs().mean())}


# ----------------------------------------------------------------------------------------------------------------------
# one builder per task name (the registry's entries)


def _builder(dataset: str, doc: str, default_input_len: int = 96):
    """The registry entry for one dataset: forecast_task with the dataset fixed, every option a keyword."""

    def build(
        data_dir=None,
        features="S",
        input_len=default_input_len,
        horizon=24,
        target="OT",
        time_features=False,
        pad_future=False,
        center=None,
    ) -> Task:
        return forecast_task(dataset, data_dir, features, input_len, horizon, target, time_features, pad_future, center)

    build.__name__ = build.__qualname__ = f"{dataset}_task"
    build.__doc__ = doc
    return build


etth1_task = _builder("etth1", "ETTh1, hourly, 12/4/4 months.")
etth2_task = _builder("etth2", "ETTh2, hourly, 12/4/4 months.")
ettm1_task = _builder("ettm1", "ETTm1, 15-minute, 12/4/4 months.")
ettm2_task = _builder("ettm2", "ETTm2, 15-minute, 12/4/4 months.")
weather_task = _builder("weather", "Weather (21 variables every 10 minutes, 2020), 70/10/20 %.")
exchange_rate_task = _builder("exchange_rate", "Daily exchange rates of 8 countries, 70/10/20 %.")
national_illness_task = _builder(
    "national_illness",
    "Weekly influenza-like illness (ILI) counts, 70/10/20 %; short series, so input_len defaults to 36.",
    default_input_len=36,
)
