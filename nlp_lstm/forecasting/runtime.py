"""Forecasting on an ONNX export: ``predict`` as ``Forecaster.predict`` (onnxruntime and
numpy only).

Legend: B batch, L input length, H horizon, C channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlp_lstm.deploy.runtime.graphs import ExportedModel, ExportedTask
from nlp_lstm.forecasting.series import (
    StandardScaler,
    check_window,
    covariate_marks,
    forecasts,
)


class OnnxForecaster(ExportedTask):
    """A forecasting export (``model`` graph: inputs (B, L, C) [and covariates] -> forecasts
    (B, H, C_out[, Q]))."""

    task = "forecasting"

    def __init__(self, path: str | Path | ExportedModel, providers: Any = None,
                 threads: int | None = None) -> None:
        super().__init__(path, providers, threads)
        manifest = self.export.manifest
        self.scaler = StandardScaler.from_json(self.export.fitted["scaler"])
        self.columns: list[str] = list(manifest["columns"])
        self.targets: list[str] = list(manifest["targets"])
        self.input_length: int = manifest["input_length"]
        self.horizon: int = manifest["horizon"]
        self.covariates: list[str] = list(manifest.get("covariates", []))
        self.quantiles: list[float] | None = manifest.get("quantiles")

    def predict(self, inputs: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        """As ``Forecaster.predict``: rows or ``{"timestamps", "rows"}`` in original units ->
        forecasts in original units (``series.forecasts``)."""
        windows = [check_window(w, self.input_length, len(self.columns)) for w in inputs]
        feeds = {"inputs": np.stack([self.scaler.transform(w.values)
                                     for w in windows]).astype(np.float32)}  # (B, L, C)
        marks = covariate_marks(windows, self.covariates, self.horizon)
        feeds |= dict(zip(("marks_in", "marks_out"), marks, strict=False))
        scaled = self.export.run("model", feeds)["forecasts"]  # (B, H, C_out[, Q])
        return forecasts(self.scaler, self.columns, self.targets, scaled.astype(np.float64),
                         windows, self.quantiles), 0
