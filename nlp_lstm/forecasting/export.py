"""The forecaster's ONNX graph (``nlp_lstm.export`` writes it).

``model``: inputs (B, L, C) standardised -> forecasts (B, H, C_out) standardised; the runtime
standardises and restores original units with the exported scaler.
"""

from __future__ import annotations

from typing import Any

import torch

from nlp_lstm.export import Export, Graph


def build(model: Any) -> Export:
    inputs = torch.randn(2, model.input_length, len(model.columns))
    graph = Graph("model", model.net, (inputs,), ["inputs"], ["forecasts"],
                  {"inputs": {0: "B"}, "forecasts": {0: "B"}})
    info = {"columns": model.columns, "targets": model.targets,
            "input_length": model.input_length, "horizon": model.horizon}
    return Export([graph], {"scaler": model.scaler}, info)
