"""The forecaster's ONNX graph (``nlp_lstm.deploy.export`` writes it).

``model``: inputs (B, L, C) standardised (with covariates also marks_in (B, L, K) and
marks_out (B, H, K)) -> forecasts (B, H, C_out), or (B, H, C_out, Q), standardised; the runtime
standardises, computes the calendar covariates and restores original units with the exported
scaler.
"""

from __future__ import annotations

from typing import Any

import torch

from nlp_lstm.deploy.export import Export, Graph


def build(model: Any) -> Export:
    inputs = (torch.randn(2, model.input_length, len(model.columns)),)
    names = ["inputs"]
    if model.covariates:  # marks_in (B, L, K), marks_out (B, H, K)
        k = len(model.covariates)
        inputs += (torch.rand(2, model.input_length, k) - 0.5, torch.rand(2, model.horizon, k)
                   - 0.5)
        names += ["marks_in", "marks_out"]
    graph = Graph("model", model.net, inputs, names, ["forecasts"],
                  {**{name: {0: "B"} for name in names}, "forecasts": {0: "B"}})
    info = {"columns": model.columns, "targets": model.targets,
            "input_length": model.input_length, "horizon": model.horizon,
            "covariates": model.covariates, "quantiles": model.quantiles}
    return Export([graph], {"scaler": model.scaler}, info)
