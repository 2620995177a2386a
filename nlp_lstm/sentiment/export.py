"""The sentiment model's ONNX graph (``nlp_lstm.deploy.export`` writes it).

``model``: tokens (B, T), lengths (B,) -> probs (B, C).
"""

from __future__ import annotations

from typing import Any

import torch

from nlp_lstm.deploy.export import Export, Graph, Probabilities, special_ids


def build(model: Any) -> Export:
    tokens = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]).clamp(max=model.tokenizer.vocab_size - 1)
    lengths = torch.tensor([4, 2])
    graph = Graph("model", Probabilities(model.net), (tokens, lengths), ["tokens", "lengths"],
                  ["probs"], {"tokens": {0: "B", 1: "T"}, "lengths": {0: "B"}, "probs": {0: "B"}})
    return Export([graph], {"tokenizer": model.tokenizer},
                  {"labels": list(model.labels), "special_ids": special_ids(model.tokenizer),
                   "truncation": model.truncation})
