"""Rolling-origin backtest of a trained forecaster over a split of a series: an origin every
``stride`` rows of the split's targets; at origin t the model reads rows [t - L, t) only and
forecasts rows [t, t + H). Scored as the protocol scores (MSE and MAE of standardised values,
over windows x horizon x targets), so stride 1 reproduces the eval command's metrics.

No leakage: the model's scaler was fitted on the training rows when it was trained, and each
forecast is made from its window alone (through ``predict``, as a user would call it).

Torch-free (numpy and the standard library): a checkpoint's ``Forecaster`` and an export's
``OnnxForecaster`` are backtested alike.

Legend: N origins, L input length, H horizon, C_out targets.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from nlp_lstm.data.errors import DataError
from nlp_lstm.forecasting.series import Series, Window, format_stamp, num_windows, split_rows

#: The splits a backtest runs on: those the model did not train on.
BACKTEST_SPLITS = ("test", "val")


@dataclass(frozen=True)
class Backtest:
    """Forecasts and truth at every origin, in original units.

    Attributes:
        split: the split backtested.
        origins: (N,) the row index of each origin's first forecast row (t).
        stride: rows between origins.
        stamps: datetime64 of every row of the series, to date the origins.
        targets: the forecast columns.
        forecasts, truth: (N, H, C_out).
        scaled_forecasts, scaled_truth: (N, H, C_out), standardised with the model's scaler.
    """

    split: str
    stride: int
    origins: np.ndarray
    stamps: np.ndarray
    targets: list[str]
    forecasts: np.ndarray
    truth: np.ndarray
    scaled_forecasts: np.ndarray
    scaled_truth: np.ndarray

    def scores(self) -> dict[str, Any]:
        """MSE and MAE on standardised values, averaged over windows x horizon x targets."""
        error = self.scaled_forecasts - self.scaled_truth  # (N, H, C_out)
        return {"split": self.split, "mse": float(np.mean(error**2)),
                "mae": float(np.mean(np.abs(error))), "windows": len(self.origins),
                "stride": self.stride, "horizon": self.forecasts.shape[1],
                "first_origin": format_stamp(self.stamps[self.origins[0] - 1]),
                "last_origin": format_stamp(self.stamps[self.origins[-1] - 1])}

    def write(self, out: TextIO, date_column: str = "date") -> None:
        """One CSV row per origin and step: ``origin`` (the last row the model read), ``step``
        (1..H), the forecast row's date, then per target ``<target>`` (the forecast) and
        ``<target>_true``, in original units."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["origin", "step", date_column,
                         *(name for t in self.targets for name in (t, f"{t}_true"))])
        horizon = self.forecasts.shape[1]
        for n, origin in enumerate(self.origins):
            known = format_stamp(self.stamps[origin - 1])
            for h in range(horizon):
                pairs = np.stack([self.forecasts[n, h], self.truth[n, h]], axis=1).ravel()
                writer.writerow([known, h + 1, format_stamp(self.stamps[origin + h]),
                                 *(f"{v:.6f}" for v in pairs)])


def backtest(model: Any, series: Series, split: str = "test", stride: int = 1,
             batch_size: int = 256) -> Backtest:
    """Backtest ``model`` (a ``Forecaster`` or an ``OnnxForecaster``) on ``split`` of
    ``series`` (the whole file, cut by the protocol's borders as training cut it)."""
    if split not in BACKTEST_SPLITS:
        raise ValueError(f"split must be one of {BACKTEST_SPLITS} (rows the model did not train "
                         f"on), got {split!r}")
    if stride < 1 or batch_size < 1:
        raise ValueError(f"stride and batch size must be positive, got {stride} and "
                         f"{batch_size}")
    series = series.select(model.columns)
    length, horizon = model.input_length, model.horizon
    start, end = split_rows(series, split, length)
    count = num_windows(end - start, length, horizon)
    if count < 1:
        raise DataError(f"the {split} split of {series.name} (rows {start} to {end}) holds no "
                        f"window of {length} inputs and {horizon} targets")
    origins = start + length + np.arange(0, count, stride)  # (N,) first forecast rows
    forecasts = []
    for first in range(0, len(origins), batch_size):
        # The model reads rows [t - L, t) only: no row at or after the origin.
        inputs = [Window(series.values[t - length : t], series.timestamps[t - length : t])
                  for t in origins[first : first + batch_size]]
        results, _ = model.predict(inputs)
        forecasts += [r["forecast"] for r in results]
    index = [model.columns.index(t) for t in model.targets]
    mean, std = model.scaler.mean[index], model.scaler.std[index]  # (C_out,)
    predicted = np.asarray(forecasts, dtype=np.float64)  # (N, H, C_out)
    steps = origins[:, None] + np.arange(horizon)  # (N, H)
    truth = series.values[steps][:, :, index]  # (N, H, C_out)
    return Backtest(split, stride, origins, series.timestamps, list(model.targets), predicted,
                    truth, (predicted - mean) / std, (truth - mean) / std)
