"""Forecasting on an ONNX export: ``predict`` as ``Forecaster.predict`` (onnxruntime and
numpy only).

Legend: B batch, L input length, H horizon, C channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlp_lstm.forecasting.series import StandardScaler, check_window, forecasts
from nlp_lstm.runtime.graphs import ExportedModel, ExportedTask


class OnnxForecaster(ExportedTask):
    """A forecasting export (``model`` graph: inputs (B, L, C) -> forecasts (B, H, C_out))."""

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

    def predict(self, inputs: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        """Each input: rows (T >= L) of the ``columns`` in original units; its forecast
        ``{"forecast": H rows of the targets}`` in original units."""
        windows = np.stack([self.scaler.transform(check_window(w, self.input_length,
                                                               len(self.columns)))
                            for w in inputs]).astype(np.float32)  # (B, L, C)
        scaled = self.export.run("model", {"inputs": windows})["forecasts"]  # (B, H, C_out)
        return forecasts(self.scaler, self.columns, self.targets, scaled.astype(np.float64)), 0
