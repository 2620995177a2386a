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


def parse_stamp(text: str) -> np.datetime64:
    """``2016-07-01 00:00:00`` (or ISO 8601 with a ``T``) -> datetime64[s]."""
    try:
        return np.datetime64(str(text).strip().replace(" ", "T"), "s")
    except ValueError:
        raise ValueError(f"{text!r} is not a date (expected e.g. 2016-07-01 00:00:00)") from None


def format_stamp(stamp: np.datetime64) -> str:
    """datetime64 -> ``2016-07-01 00:00:00``, as the ETT files write dates."""
    return str(np.datetime64(stamp, "s")).replace("T", " ")


def check_stamps(stamps: np.ndarray, where: str = "the timestamps",
                 first_line: int | None = None) -> None:
    """A ValueError unless (T,) datetime64 strictly increase at one regular step; it names the
    file line (rows from ``first_line``) or else the row (from 0)."""
    steps = np.diff(stamps)
    if len(steps) == 0:
        raise ValueError(f"{where}: at least 2 timestamps are needed to know the step")

    def at(i: int) -> str:
        return f"line {first_line + i}" if first_line is not None else f"row {i}"

    if (steps <= np.timedelta64(0, "s")).any():
        i = int(np.argmax(steps <= np.timedelta64(0, "s")))
        kind = "duplicates" if steps[i] == np.timedelta64(0, "s") else "goes back before"
        raise ValueError(f"{where} {at(i + 1)}: timestamp {format_stamp(stamps[i + 1])} {kind} "
                         f"the previous row's {format_stamp(stamps[i])}")
    if (steps != steps[0]).any():
        i = int(np.argmax(steps != steps[0]))
        raise ValueError(f"{where} {at(i + 1)}: irregular timestamps: "
                         f"{format_stamp(stamps[i + 1])} comes {steps[i]} after "
                         f"{format_stamp(stamps[i])}, but the series steps by {steps[0]}")


def future_stamps(stamps: np.ndarray, horizon: int) -> np.ndarray:
    """The ``horizon`` timestamps after regular (T,) ``stamps``, at their step: (H,)."""
    step = stamps[-1] - stamps[-2]
    return stamps[-1] + step * np.arange(1, horizon + 1)


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
            stamps.append(parse_stamp(row[date_at]))
        except ValueError as e:
            raise DataError(f"{path} line {n}: {e}") from None
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
    try:
        check_stamps(timestamps, str(path), first_line=2)
    except ValueError as e:
        raise DataError(str(e)) from None
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


#: Calendar features of a timestamp, each scaled to [-0.5, 0.5] (as TSLib's ``timeF``).
CALENDAR = ("minute", "hour", "weekday", "day", "yearday", "month")


def check_calendar(names: list[str] | tuple[str, ...]) -> list[str]:
    """``names`` as a list; a ValueError names any that is not in ``CALENDAR``."""
    unknown = [n for n in names if n not in CALENDAR]
    if unknown:
        raise ValueError(f"unknown calendar feature(s) {unknown}; expected some of {CALENDAR}")
    return list(names)


def calendar(stamps: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """(T,) datetime64 -> (T, K) float32 calendar features ``names`` (of ``CALENDAR``): known
    for future rows too, so they are the known-future covariates of every series."""
    check_calendar(names)
    units = {u: stamps.astype(f"datetime64[{u}]") for u in ("m", "h", "D", "M", "Y")}
    days = units["D"].astype(np.int64)
    index = {  # (T,) integer positions and their largest value
        "minute": ((units["m"] - units["h"]).astype(np.int64), 59),
        "hour": ((units["h"] - units["D"]).astype(np.int64), 23),
        "weekday": ((days + 3) % 7, 6),  # 1970-01-01 was a Thursday; Monday is 0
        "day": ((units["D"] - units["M"]).astype(np.int64), 30),
        "yearday": ((units["D"] - units["Y"]).astype(np.int64), 365),
        "month": ((units["M"] - units["Y"]).astype(np.int64), 11),
    }
    columns = [index[n][0] / index[n][1] - 0.5 for n in names]
    return np.stack(columns, 1).astype(np.float32) if columns else np.zeros(
        (len(stamps), 0), np.float32)  # (T, K)


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


@dataclass(frozen=True)
class Window:
    """One forecast's input, in original units.

    Attributes:
        values: (L, C) float64, the last L rows.
        stamps: (L,) datetime64[s] of those rows, or None when the input had none.
    """

    values: np.ndarray
    stamps: np.ndarray | None = None


def check_window(window: Any, input_length: int, channels: int) -> Window:
    """One input -> its last ``input_length`` rows: a list of rows of numbers, or
    ``{"timestamps": [...], "rows": [...]}`` (one timestamp a row, a regular step). A ValueError
    names what is wrong (too few rows, a wrong number of columns, a missing or non-finite value,
    bad timestamps)."""
    stamps = None
    if isinstance(window, Window):
        window, stamps = window.values, window.stamps
    elif isinstance(window, dict):
        if set(window) != {"timestamps", "rows"}:
            raise ValueError(f"expected the keys 'timestamps' and 'rows', got {sorted(window)}")
        window, texts = window["rows"], window["timestamps"]
        if not isinstance(texts, list | tuple | np.ndarray):
            raise ValueError("'timestamps' must be a list of dates, one a row")
        stamps = np.array([parse_stamp(t) for t in texts]) if len(texts) else None
    try:
        values = np.asarray(window, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("expected rows of numbers") from None
    if values.ndim != 2 or values.shape[1] != channels:
        raise ValueError(f"expected rows of {channels} values, got shape {values.shape}")
    if len(values) < input_length:
        raise ValueError(f"has {len(values)} rows; the model reads the last {input_length}")
    if stamps is not None:
        if len(stamps) != len(values):
            raise ValueError(f"has {len(stamps)} timestamps for {len(values)} rows")
        stamps = stamps[-input_length:]
        check_stamps(stamps, "the input's timestamps")
    values = values[-input_length:]
    if not np.isfinite(values).all():
        raise ValueError("has a missing or non-finite value in the rows the model reads")
    return Window(values, stamps)


def covariate_marks(windows: list[Window], covariates: list[str],
                    horizon: int) -> tuple[np.ndarray, ...]:
    """The calendar covariates of windows (``series.Window``) with timestamps: marks_in
    (B, L, K) and marks_out (B, H, K); none for a model without covariates."""
    if not covariates:
        return ()
    if any(w.stamps is None for w in windows):
        raise ValueError(f"this model reads calendar covariates {covariates}: give each input "
                         'as {"timestamps": [...], "rows": [...]}')
    marks_in = np.stack([calendar(w.stamps, covariates) for w in windows])  # (B, L, K)
    marks_out = np.stack([calendar(future_stamps(w.stamps, horizon), covariates)
                          for w in windows])  # (B, H, K)
    return marks_in, marks_out


def forecasts(scaler: StandardScaler, columns: list[str], targets: list[str],
              scaled: np.ndarray, windows: list[Window],
              quantiles: list[float] | None = None) -> list[dict[str, Any]]:
    """Standardised forecasts -> per window, in original units: ``{"forecast": H rows}``, plus
    ``"timestamps"`` (H dates) when the window had timestamps and ``"quantiles"`` (``{q: H
    rows}``) for a quantile model.

    ``scaled``: (B, H, C_out), or (B, H, C_out, Q) for ``quantiles`` (the point forecast is the
    median, which a quantile model must have)."""
    index = [columns.index(t) for t in targets]
    std, mean = scaler.std[index], scaler.mean[index]  # (C_out,)
    results = []
    for b, window in enumerate(windows):
        result: dict[str, Any] = {}
        if window.stamps is not None:
            result["timestamps"] = [format_stamp(t) for t in
                                    future_stamps(window.stamps, scaled.shape[1])]
        if quantiles:
            values = scaled[b] * std[:, None] + mean[:, None]  # (H, C_out, Q)
            result["forecast"] = np.round(values[..., quantiles.index(0.5)], 6).tolist()
            result["quantiles"] = {str(q): np.round(values[..., i], 6).tolist()
                                   for i, q in enumerate(quantiles)}
        else:
            result["forecast"] = np.round(scaled[b] * std + mean, 6).tolist()  # (H, C_out)
        results.append(result)
    return results
