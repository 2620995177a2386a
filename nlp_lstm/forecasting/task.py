"""The forecasting task: numeric series to forecasts of the next ``horizon`` rows."""

from __future__ import annotations

import json
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from nlp_lstm.core.task import Task
from nlp_lstm.forecasting import endpoint, export, table
from nlp_lstm.forecasting.data import ForecastDataModule
from nlp_lstm.forecasting.module import Forecaster
from nlp_lstm.forecasting.runtime import OnnxForecaster


def parse_rows(line: str) -> list[list[float]] | dict[str, list[Any]]:
    """A command-line input: one window as a JSON list of rows of numbers, or an object
    ``{"timestamps": [...], "rows": [...]}`` (the forecast then carries its timestamps)."""
    try:
        window = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not JSON ({e.msg}): expected a list of rows of numbers") from None
    if isinstance(window, dict):
        if set(window) != {"timestamps", "rows"}:
            raise ValueError(f"expected the keys 'timestamps' and 'rows', got {sorted(window)}")
        rows = window["rows"]
    else:
        rows = window
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise ValueError("expected a JSON list of rows of numbers, e.g. [[1.0, 2.0], ...], or "
                         '{"timestamps": [...], "rows": [...]}')
    return window


def prepare_eval(cfg: DictConfig, model: Forecaster) -> ForecastDataModule:
    datamodule = instantiate(cfg.data, scaler=model.scaler.to_json(),
                             input_length=model.input_length, horizon=model.horizon,
                             covariates=model.covariates)
    if datamodule.input_columns != model.columns or datamodule.target_columns != model.targets:
        raise ValueError(f"the data's columns {datamodule.input_columns} -> "
                         f"{datamodule.target_columns} differ from the checkpoint's "
                         f"{model.columns} -> {model.targets}")
    return datamodule


def model_inputs(dm: ForecastDataModule) -> dict[str, Any]:
    return {"scaler": dm.scaler.to_json(), "columns": dm.input_columns,
            "targets": dm.target_columns, "input_length": dm.input_length,
            "horizon": dm.horizon, "covariates": dm.covariates}


TASK = Task(
    name="forecasting",
    datamodule=ForecastDataModule,
    models=(Forecaster,),
    model_inputs=model_inputs,
    prepare_eval=prepare_eval,
    export=export.build,
    runtime=OnnxForecaster,
    endpoint=endpoint.ENDPOINT,
    parse_input=parse_rows,
    keep_float=("embedding",),
    table=table.TABLE,
)
