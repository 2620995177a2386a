"""Time series as the long-horizon forecasting literature reads them (Informer, Autoformer,
DLinear, PatchTST and TSLib share the protocol): a CSV of a date column and numeric columns,
split by fixed borders, standardised with statistics of the training rows only, cut into every
window of ``L`` input rows followed by ``H`` target rows.

Torch-free (numpy and the standard library): the ONNX runtime and the predict command read
series too.

Legend: N rows (or windows), L input length, H horizon, C channels.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp_lstm.data.errors import DataError

#: ``features``: M multivariate in and out; S the target alone; MS all in, the target out.
FEATURES = ("M", "S", "MS")
SPLITS = ("train", "val", "test")
#: Rows of the ETT splits at one row an hour (12, 4 and 4 months of 30 days); the 15-minute
#: files take four times as many. Rows from the end of test on are never used.
ETT_HOURLY_BORDERS = (12 * 30 * 24, 16 * 30 * 24, 20 * 30 * 24)


@dataclass(frozen=True)
class Series:
    """A table of time steps.

    Attributes:
        name: where it came from (the file name), for messages and the split rule.
        timestamps: (N,) ``datetime64[s]``, strictly increasing at a regular step.
        columns: the names of the numeric columns, in file order.
        values: (N, C) float64.
    """

    name: str
    timestamps: np.ndarray
    columns: tuple[str, ...]
    values: np.ndarray

    def select(self, columns: list[str] | tuple[str, ...]) -> Series:
        """These columns only, in this order; a DataError names unknown ones."""
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise DataError(f"{self.name} has no column(s) {unknown}; its columns: "
                            f"{list(self.columns)}")
        index = [self.columns.index(c) for c in columns]
        return Series(self.name, self.timestamps, tuple(columns), self.values[:, index])


def _open(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_csv(path: str | Path, date_column: str = "date", min_rows: int = 2) -> Series:
    """A CSV (``.csv`` or ``.csv.gz``) with a date column and numeric columns.

    A DataError, naming the file, the row and the column, for: a missing file or date column,
    an empty or non-numeric cell, NaN, an unreadable date, duplicate or decreasing timestamps,
    an irregular step, and fewer than ``min_rows`` rows."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"series file not found: {path}")
    try:
        with _open(path) as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if not rows:
        raise DataError(f"{path} is empty: expected a header with a {date_column!r} column")
    header = [h.strip() for h in rows[0]]
    if date_column not in header:
        raise DataError(f"{path} has no {date_column!r} column; its header: {header}")
    date_at = header.index(date_column)
    columns = tuple(h for i, h in enumerate(header) if i != date_at)
    if not columns:
        raise DataError(f"{path} has no numeric columns besides {date_column!r}")
    body = rows[1:]
    if len(body) < min_rows:
        raise DataError(f"{path} has {len(body)} rows; at least {min_rows} are needed")
    values = np.empty((len(body), len(columns)), dtype=np.float64)  # (N, C)
    stamps = []
    for n, row in enumerate(body, start=2):  # file line numbers, the header is line 1
        if len(row) != len(header):
            raise DataError(f"{path} line {n}: {len(row)} fields, expected {len(header)}")
        try:
            stamps.append(np.datetime64(row[date_at].strip().replace(" ", "T"), "s"))
        except ValueError:
            raise DataError(f"{path} line {n}: {row[date_at]!r} is not a date "
                            "(expected e.g. 2016-07-01 00:00:00)") from None
        cells = [v for i, v in enumerate(row) if i != date_at]
        for c, (name, cell) in enumerate(zip(columns, cells, strict=True)):
            try:
                value = float(cell)
            except ValueError:
                what = "empty" if not cell.strip() else f"{cell!r}, not a number"
                raise DataError(f"{path} line {n}, column {name!r}: {what}") from None
            if not math.isfinite(value):
                raise DataError(f"{path} line {n}, column {name!r}: {cell!r} (missing values "
                                "must be filled before forecasting)")
            values[n - 2, c] = value
    timestamps = np.array(stamps)
    steps = np.diff(timestamps)
    if (steps <= np.timedelta64(0, "s")).any():
        i = int(np.argmax(steps <= np.timedelta64(0, "s")))
        kind = "duplicates" if steps[i] == np.timedelta64(0, "s") else "goes back before"
        raise DataError(f"{path} line {i + 3}: timestamp {timestamps[i + 1]} {kind} the "
                        f"previous row's {timestamps[i]}")
    if (steps != steps[0]).any():
        i = int(np.argmax(steps != steps[0]))
        raise DataError(f"{path} line {i + 3}: irregular timestamps: {timestamps[i + 1]} comes "
                        f"{steps[i]} after {timestamps[i]}, but the series steps by {steps[0]}")
    return Series(path.name, timestamps, columns, values)


def split_rows(series: Series, split: str, input_length: int) -> tuple[int, int]:
    """The rows ``[start, end)`` of a split, its inputs included: ``start`` is ``input_length``
    rows before the split's first target row. ETT files (``ETTh*``, ``ETTm*``) take the fixed
    borders of the literature; any other file a 70/10/20 ratio (as TSLib's custom data set)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n = len(series.values)
    name = series.name.upper()
    if name.startswith(("ETTH", "ETTM")):
        scale = 4 if name.startswith("ETTM") else 1
        train, val, test = (b * scale for b in ETT_HOURLY_BORDERS)
        if n < test:
            raise DataError(f"{series.name} has {n} rows; the ETT borders need {test}")
    else:
        train, test_rows = int(n * 0.7), int(n * 0.2)
        val, test = n - test_rows, n
    first = {"train": 0, "val": train, "test": val}[split]
    end = {"train": train, "val": val, "test": test}[split]
    return max(0, first - input_length), end


def num_windows(rows: int, input_length: int, horizon: int) -> int:
    """How many windows of L inputs and H targets ``rows`` consecutive rows hold."""
    return max(0, rows - input_length - horizon + 1)


def windows(values: np.ndarray, input_length: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of consecutive rows, as views: inputs (N, L, C) and targets (N, H, C)."""
    count = num_windows(len(values), input_length, horizon)
    if count < 1:
        raise DataError(f"{len(values)} rows hold no window of {input_length} inputs and "
                        f"{horizon} targets; at least {input_length + horizon} rows are needed")
    view = np.lib.stride_tricks.sliding_window_view(values, input_length + horizon, axis=0)
    view = view[:count].transpose(0, 2, 1)  # (N, L + H, C)
    return view[:, :input_length], view[:, input_length:]


class StandardScaler:
    """Per-column standardisation (population std, ddof 0, as scikit-learn's), fitted on the
    training rows only: the fitted state a forecaster carries (``nlp_lstm.fitted.Fitted``)."""

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)  # (C,)
        self.std = np.asarray(std, dtype=np.float64)  # (C,)
        # A constant column: scale 1, as scikit-learn does, instead of dividing by zero.
        self.std = np.where(self.std > 0, self.std, 1.0)

    @classmethod
    def fit(cls, values: np.ndarray) -> StandardScaler:
        return cls(values.mean(0), values.std(0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_json(self) -> str:
        return json.dumps({"mean": self.mean.tolist(), "std": self.std.tolist()})

    @classmethod
    def from_json(cls, text: str, /) -> StandardScaler:
        state = json.loads(text)
        return cls(state["mean"], state["std"])


def feature_columns(series: Series, features: str, target: str) -> tuple[list[str], list[str]]:
    """(input columns, target columns) for ``features`` M, S or MS."""
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    if target not in series.columns:
        raise DataError(f"{series.name} has no target column {target!r}; its columns: "
                        f"{list(series.columns)}")
    every = list(series.columns)
    return {"M": (every, every), "S": ([target], [target]), "MS": (every, [target])}[features]


def repeat_forecast(inputs: np.ndarray, horizon: int) -> np.ndarray:
    """The "repeat the last value" baseline: inputs (N, L, C) -> forecasts (N, H, C)."""
    return np.repeat(inputs[:, -1:], horizon, axis=1)


def scores(forecasts: np.ndarray, targets: np.ndarray,
           compat_drop_last: int | None = None) -> dict[str, float]:
    """MSE and MAE averaged over windows x horizon x channels, over every window; with
    ``compat_drop_last=B``, only the windows of full batches of B (as published code that
    dropped the last test batch scored), to match published tables."""
    count = len(forecasts)
    if compat_drop_last is not None:
        if compat_drop_last < 1:
            raise ValueError(f"compat_drop_last must be a positive batch size, got "
                             f"{compat_drop_last}")
        count = count // compat_drop_last * compat_drop_last
    error = forecasts[:count] - targets[:count]  # (N, H, C)
    return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error))),
            "windows": int(count)}


def moving_average(values: np.ndarray, kernel: int) -> np.ndarray:
    """Trailing (causal) moving average over the time axis of (..., T, C): the value at t
    averages rows max(0, t - kernel + 1) .. t, so it never reads a later row."""
    if kernel < 1:
        raise ValueError(f"the moving-average kernel must be positive, got {kernel}")
    sums = np.cumsum(values, axis=-2)  # (..., T, C)
    shifted = np.concatenate([np.zeros_like(sums[..., :1, :]), sums], axis=-2)
    t = np.arange(values.shape[-2])
    start = np.maximum(0, t - kernel + 1)
    counts = (t - start + 1)[:, None]  # (T, 1)
    return (shifted[..., t + 1, :] - shifted[..., start, :]) / counts


def check_window(window: Any, input_length: int, channels: int) -> np.ndarray:
    """One input as (T, C) float64, its last ``input_length`` rows; a ValueError naming what is
    wrong (too few rows, a wrong number of columns, a missing or non-finite value)."""
    try:
        values = np.asarray(window, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("expected rows of numbers") from None
    if values.ndim != 2 or values.shape[1] != channels:
        raise ValueError(f"expected rows of {channels} values, got shape {values.shape}")
    if len(values) < input_length:
        raise ValueError(f"has {len(values)} rows; the model reads the last {input_length}")
    values = values[-input_length:]
    if not np.isfinite(values).all():
        raise ValueError("has a missing or non-finite value in the rows the model reads")
    return values


def forecasts(scaler: StandardScaler, columns: list[str], targets: list[str],
              scaled: np.ndarray) -> list[dict[str, Any]]:
    """Standardised forecasts (B, H, C_out) -> per window ``{"forecast"}`` in original units."""
    index = [columns.index(t) for t in targets]
    values = scaled * scaler.std[index] + scaler.mean[index]  # (B, H, C_out)
    return [{"forecast": np.round(v, 6).tolist()} for v in values]
