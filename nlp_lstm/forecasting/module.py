"""The forecasting LightningModule: loss and metrics on standardised values (the protocol's
MSE and MAE), prediction in original units.

Legend: B batch, L input length, H horizon, C channels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from nlp_lstm.forecasting.net import SegmentForecaster
from nlp_lstm.forecasting.series import StandardScaler, check_window, forecasts
from nlp_lstm.module import OptimizerFactory, SchedulerFactory, TaskModule

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss}


class Forecaster(TaskModule):
    """Forecasts ``horizon`` rows of the ``targets`` columns from ``input_length`` rows of the
    ``columns``.

    Args:
        scaler: the training rows' scaler as JSON; it travels inside the checkpoint.
        columns: the input columns, in order.
        targets: the forecast columns (a subset of ``columns``).
        input_length, horizon: L and H.
        segment, embedding_dim, encoder, normalization, dropout: the network's
            (``SegmentForecaster``).
        loss: ``mse`` or ``mae``.
        optimizer, scheduler: see ``TaskModule``.
    """

    task = "forecasting"

    def __init__(
        self,
        scaler: str,
        columns: Sequence[str],
        targets: Sequence[str],
        input_length: int,
        horizon: int,
        segment: int = 24,
        embedding_dim: int = 128,
        encoder: Mapping[str, object] | None = None,
        normalization: str = "last",
        dropout: float = 0.0,
        loss: str = "mse",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        unknown = [t for t in targets if t not in columns]
        if unknown:
            raise ValueError(f"targets {unknown} are not among the columns {list(columns)}")
        self.scaler = StandardScaler.from_json(scaler)
        self.columns, self.targets = list(columns), list(targets)
        self.input_length, self.horizon, self.loss_name = input_length, horizon, loss
        #: The input-length guard's limit: a forecast reads this many rows.
        self.max_length = input_length
        self.net = SegmentForecaster(input_length, horizon, len(self.columns),
                                     [self.columns.index(t) for t in self.targets], segment,
                                     embedding_dim, encoder, normalization, dropout)
        self.metrics = torch.nn.ModuleDict({
            f"{stage}_{name}": metric()
            for stage in ("val", "test")
            for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))})

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, L, C) standardised -> forecasts (B, H, C_out) standardised."""
        return self.net(inputs)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = LOSSES[self.loss_name](self(batch["inputs"]), batch["targets"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["inputs"]))
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        predicted = self(batch["inputs"]).float().reshape(-1)  # (B*H*C_out,)
        targets = batch["targets"].reshape(-1)  # (B*H*C_out,)
        for name in ("mse", "mae"):
            metric = self.metrics[f"{stage}_{name}"]
            metric.update(predicted, targets)
            self.log(f"{stage}/{name}", metric, prog_bar=stage == "val",
                     batch_size=len(batch["inputs"]))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # ------------------------------------------------------------ prediction
    @torch.no_grad()
    def predict(self, inputs: Sequence[Any]) -> tuple[list[dict[str, Any]], int]:
        """Each input: rows (T >= L) of the ``columns`` in original units; its forecast
        ``{"forecast": H rows of the targets}`` in original units. Nothing is truncated: a
        forecast reads the last L rows by design."""
        self.eval()
        windows = np.stack([self.scaler.transform(check_window(w, self.input_length,
                                                               len(self.columns)))
                            for w in inputs])  # (B, L, C)
        scaled = self(torch.from_numpy(windows).float().to(self.device)).double().cpu()
        return forecasts(self.scaler, self.columns, self.targets, scaled.numpy()), 0

