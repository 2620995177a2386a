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

from nlp_lstm.forecasting.net import SegmentForecaster, check_quantiles
from nlp_lstm.forecasting.series import (
    StandardScaler,
    check_calendar,
    check_window,
    covariate_marks,
    forecasts,
)
from nlp_lstm.training.module import OptimizerFactory, SchedulerFactory, TaskModule

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss}


def pinball_loss(predicted: torch.Tensor, targets: torch.Tensor,
                 quantiles: torch.Tensor) -> torch.Tensor:
    """The quantile (pinball) loss averaged over levels: predicted (B, H, C, Q), targets
    (B, H, C), quantiles (Q,)."""
    error = targets[..., None] - predicted  # (B, H, C, Q)
    return torch.maximum(quantiles * error, (quantiles - 1) * error).mean()


class Forecaster(TaskModule):
    """Forecasts ``horizon`` rows of the ``targets`` columns from ``input_length`` rows of the
    ``columns``.

    Args:
        scaler: the training rows' scaler as JSON; it travels inside the checkpoint.
        columns: the input columns, in order.
        targets: the forecast columns (a subset of ``columns``).
        input_length, horizon: L and H.
        covariates: the calendar features the model reads (``series.CALENDAR``; the data's).
        segment, embedding_dim, encoder, normalization, dropout, moving_averages, conv_kernel,
            conv_channels, mixer_layers: the network's (``SegmentForecaster``).
        quantiles: quantile levels (with 0.5) to forecast, trained with the pinball loss; the
            median is the point forecast that MSE and MAE score. None: a point forecast.
        loss: ``mse`` or ``mae`` (point forecasts).
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
        covariates: Sequence[str] = (),
        segment: int | Sequence[int] = 24,
        embedding_dim: int = 128,
        encoder: Mapping[str, object] | None = None,
        normalization: str = "last",
        dropout: float = 0.0,
        moving_averages: Sequence[int] = (),
        conv_kernel: int = 0,
        conv_channels: int = 8,
        mixer_layers: int = 0,
        quantiles: Sequence[float] | None = None,
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
        self.covariates = check_calendar(covariates)
        self.quantiles: list[float] | None = check_quantiles(quantiles or []) or None
        #: The input-length guard's limit: a forecast reads this many rows.
        self.max_length = input_length
        self.net = SegmentForecaster(
            input_length, horizon, len(self.columns),
            [self.columns.index(t) for t in self.targets], segment, embedding_dim, encoder,
            normalization, dropout, moving_averages, conv_kernel, conv_channels, mixer_layers,
            len(self.covariates), self.quantiles or ())
        if self.quantiles:
            self.register_buffer("levels", torch.tensor(self.quantiles), persistent=False)
        self.metrics = torch.nn.ModuleDict({
            f"{stage}_{name}": metric()
            for stage in ("val", "test")
            for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))})

    def forward(self, inputs: torch.Tensor, marks_in: torch.Tensor | None = None,
                marks_out: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (B, L, C) standardised (and the covariates, marks_in (B, L, K), marks_out
        (B, H, K)) -> forecasts (B, H, C_out), or (B, H, C_out, Q), standardised."""
        return self.net(inputs, marks_in, marks_out)

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(batch["inputs"], batch.get("marks_in"), batch.get("marks_out"))

    def point(self, forecasts: torch.Tensor) -> torch.Tensor:
        """(B, H, C_out[, Q]) -> (B, H, C_out): the median of a quantile forecast."""
        return forecasts[..., self.quantiles.index(0.5)] if self.quantiles else forecasts

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        predicted = self._forward(batch)
        if self.quantiles:
            loss = pinball_loss(predicted, batch["targets"], self.levels)
        else:
            loss = LOSSES[self.loss_name](predicted, batch["targets"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["inputs"]))
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        predicted = self.point(self._forward(batch)).float().reshape(-1)  # (B*H*C_out,)
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
        """Each input: rows (T >= L) of the ``columns`` in original units, or
        ``{"timestamps", "rows"}`` (a model with covariates needs the timestamps); its forecast
        in original units (``series.forecasts``). Nothing is truncated: a forecast reads the
        last L rows by design."""
        self.eval()
        windows = [check_window(w, self.input_length, len(self.columns)) for w in inputs]
        values = np.stack([self.scaler.transform(w.values) for w in windows])  # (B, L, C)
        marks = [torch.from_numpy(m).to(self.device)
                 for m in covariate_marks(windows, self.covariates, self.horizon)]
        scaled = self(torch.from_numpy(values).float().to(self.device), *marks)
        return forecasts(self.scaler, self.columns, self.targets, scaled.double().cpu().numpy(),
                         windows, self.quantiles), 0
