"""Forecasting data: a series file (ETT, any CSV) or the embedded synthetic series, cut by the
standard protocol (``series.py``) into windows of standardised values.

Legend: B batch, L input length, H horizon, C channels (C_in read, C_out forecast).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from nlp_lstm.data.base import DataModule, ToFit, file_fingerprint
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.forecasting.series import (
    SPLITS,
    Series,
    StandardScaler,
    calendar,
    check_calendar,
    feature_columns,
    num_windows,
    read_csv,
    split_rows,
    windows,
)


class SeriesFile:
    """A CSV (``.csv`` or ``.csv.gz``) with a date column and numeric columns; ``path`` is
    relative to the data root unless absolute (e.g. ``ett/ETTh1.csv.gz``)."""

    splits = SPLITS

    def __init__(self, path: str, date_column: str = "date") -> None:
        self.path, self.date_column = path, date_column

    def file(self, root: Path) -> Path:
        return Path(self.path) if Path(self.path).is_absolute() else root / self.path

    def prepare(self, root: Path) -> None:
        if not self.file(root).is_file():
            raise DataError(f"series file not found: {self.file(root)} (set data.source.path, "
                            "or data.root / $NLP_LSTM_DATA to the folder that holds it)")

    def fingerprint(self, root: Path) -> str:
        return file_fingerprint(self.file(root))

    def read(self, root: Path) -> Series:
        return read_csv(self.file(root), self.date_column)


class SyntheticSeries:
    """The embedded series, for runs without data: ``channels`` hourly channels of a daily and a
    weekly cycle with a slow trend and noise, the last one (``OT``) a lagged mix of the
    others. Deterministic for a ``seed``; split 70/10/20."""

    splits = SPLITS

    def __init__(self, rows: int = 4000, channels: int = 4, noise: float = 0.1,
                 seed: int = 0) -> None:
        if rows < 100 or channels < 1:
            raise ValueError(f"the synthetic series needs rows >= 100 and channels >= 1, got "
                             f"{rows} and {channels}")
        self.rows, self.channels, self.noise, self.seed = rows, channels, noise, seed

    def prepare(self, root: Path) -> None:
        pass

    def fingerprint(self, root: Path) -> str:
        return f"synthetic-{self.rows}-{self.channels}-{self.noise}-{self.seed}"

    def read(self, root: Path) -> Series:
        rng = np.random.default_rng(self.seed)
        t = np.arange(self.rows, dtype=np.float64)[:, None]  # (N, 1)
        phase = rng.uniform(0, 2 * np.pi, (2, self.channels))
        values = (np.sin(2 * np.pi * t / 24 + phase[0]) + 0.5 * np.sin(2 * np.pi * t / 168
                                                                           + phase[1])
                  + 0.001 * t * rng.uniform(-1, 1, self.channels)
                  + self.noise * rng.normal(size=(self.rows, self.channels)))  # (N, C)
        if self.channels > 1:  # the target follows the others three steps later
            values[3:, -1] = values[:-3, :-1].mean(1) + self.noise * rng.normal(
                size=self.rows - 3)
        start = np.datetime64("2020-01-01T00:00:00", "s")
        stamps = start + np.arange(self.rows) * np.timedelta64(1, "h")
        columns = (*(f"x{i}" for i in range(self.channels - 1)), "OT")
        return Series("synthetic", stamps, columns, values)


class Windows(Dataset):
    """Every window of a split: inputs (L, C_in) and targets (H, C_out), float32; with ``marks``
    (the rows' covariates (N, K)), also the inputs' (L, K) and the targets' (H, K)."""

    def __init__(self, values: np.ndarray, input_length: int, horizon: int,
                 targets: list[int], count: int | None = None,
                 marks: np.ndarray | None = None) -> None:
        self.inputs, outputs = windows(values, input_length, horizon)  # (N, L, C), (N, H, C)
        self.outputs = outputs[:, :, targets]  # (N, H, C_out)
        self.marks = None if marks is None else windows(marks, input_length, horizon)
        self.count = len(self.inputs) if count is None else count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
        if self.marks is None:
            return self.inputs[i], self.outputs[i]
        return self.inputs[i], self.outputs[i], self.marks[0][i], self.marks[1][i]


def collate(batch: list[tuple[np.ndarray, ...]]) -> dict[str, torch.Tensor]:
    names = ("inputs", "targets", "marks_in", "marks_out")  # (B, L, C_in), (B, H, C_out),
    return {name: torch.from_numpy(np.stack(column)).float()  # (B, L, K), (B, H, K)
            for name, column in zip(names, zip(*batch, strict=True), strict=False)}


class ForecastDataModule(DataModule):
    """Windows of a series for forecasting ``horizon`` rows from ``input_length`` rows.

    Args:
        source: a ``SeriesFile`` or ``SyntheticSeries``.
        input_length: L, the rows a forecast reads.
        horizon: H, the rows it forecasts.
        features: M (every column in and out), S (the target alone), MS (all in, the target
            out).
        target: the target column (S, MS).
        scaler: the fitted scaler as JSON (from a checkpoint) instead of fitting one.
        compat_drop_last: score the test split as published code did, on full batches of this
            size only (to match published tables; never the default).
        covariates: calendar features of every row (``series.CALENDAR``), the known-future
            covariates the model reads for its inputs and its horizon.
        Others: those of ``DataModule``; of ``loader``, a window takes ``batch_size``,
            ``num_workers`` and ``seed`` (windows have one length: no token budget, no
            truncation).
    """

    task = "forecasting"
    default_loader = LoaderOptions(batch_size=32)

    def __init__(
        self,
        source: SeriesFile | SyntheticSeries,
        input_length: int = 336,
        horizon: int = 96,
        features: str = "M",
        target: str = "OT",
        scaler: str | None = None,
        compat_drop_last: int | None = None,
        covariates: list[str] | tuple[str, ...] = (),
        root: str | None = None,
        cache_dir: str | None = None,
        loader: LoaderOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(source, root=root, cache_dir=cache_dir, loader=loader)
        if input_length < 1 or horizon < 1:
            raise ValueError(f"input_length and horizon must be positive, got {input_length} "
                             f"and {horizon}")
        if compat_drop_last is not None and compat_drop_last < 1:
            raise ValueError(f"compat_drop_last must be a positive batch size or null, got "
                             f"{compat_drop_last}")
        self.input_length, self.horizon = input_length, horizon
        self.features, self.target = features, target
        self.compat_drop_last = compat_drop_last
        self.covariates = check_calendar(covariates)
        self.scaler = StandardScaler.from_json(scaler) if scaler else None
        self._series: Series | None = None

    # ------------------------------------------------------------ the series
    @property
    def series(self) -> Series:
        """The input columns of the series, read once."""
        if self._series is None:
            whole = self.source.read(self.root)
            inputs, _ = feature_columns(whole, self.features, self.target)
            self._series = whole.select(inputs)
        return self._series

    @property
    def input_columns(self) -> list[str]:
        return list(self.series.columns)

    @property
    def target_columns(self) -> list[str]:
        return feature_columns(self.series, self.features, self.target)[1]

    # --------------------------------------------------------- fitted state
    def fitted_names(self) -> tuple[str, ...]:
        return ("scaler",)

    def fitted_to_build(self) -> dict[str, ToFit]:
        if self.scaler is not None:
            return {}
        cache = self.fitted_cache(f"scaler-{self.features}-{self.target}")

        def fit() -> StandardScaler:
            start, end = split_rows(self.series, "train", self.input_length)
            return StandardScaler.fit(self.series.values[start:end])

        return {"scaler": ToFit(cache, fit, StandardScaler)}

    # ------------------------------------------------------------- batches
    def split_windows(self, split: str) -> Windows:
        """The windows of a split, standardised with the training rows' scaler."""
        if self.scaler is None:
            self.setup()
        start, end = split_rows(self.series, split, self.input_length)
        values = self.scaler.transform(self.series.values[start:end]).astype(np.float32)
        count = num_windows(end - start, self.input_length, self.horizon)
        if split == "test" and self.compat_drop_last is not None:
            count = count // self.compat_drop_last * self.compat_drop_last
        targets = [self.input_columns.index(c) for c in self.target_columns]
        marks = (calendar(self.series.timestamps[start:end], self.covariates)
                 if self.covariates else None)  # (N, K)
        return Windows(values, self.input_length, self.horizon, targets, count, marks)

    def dataloader(self, split: str, *, shuffle: bool = False) -> DataLoader:
        data = self.split_windows(split)
        return self.loader(data, collate,
                           self.batch_sampler([self.input_length] * len(data), shuffle=shuffle))

    def evaluation_size(self, loader: DataLoader) -> tuple[str, int]:
        return "windows", len(loader.dataset)

    def statistics(self) -> dict[str, Any]:
        splits = {}
        for split in self.splits:
            start, end = split_rows(self.series, split, self.input_length)
            splits[split] = {"examples": num_windows(end - start, self.input_length,
                                                     self.horizon), "rows": end - start}
        return {"splits": splits, "padding_waste": 0.0, "channels": len(self.input_columns)}
