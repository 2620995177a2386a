"""Pooling of encoder outputs into one vector per sequence.

Legend: B batch, T time, F features (D*H for a D-directional encoder of hidden size H).
"""

from __future__ import annotations

import torch
from torch import nn

POOLINGS = ("last", "mean", "max", "attention")


class Pooling(nn.Module):
    """Pool (B, T, F) outputs under a (B, T) mask (True = real token) into (B, F).

    - ``last``: the final states of the last layer, forward and backward concatenated (for a
      bidirectional encoder the backward half is the state after reading back to token 0).
    - ``mean``: mean over real tokens.
    - ``max``: elementwise max over real tokens.
    - ``attention``: softmax-weighted sum with a learned query (Yang et al. 2016).
    """

    def __init__(self, mode: str, features: int) -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")
        self.mode = mode
        if mode == "attention":
            self.proj = nn.Linear(features, features)
            self.query = nn.Linear(features, 1, bias=False)

    def forward(
        self, outputs: torch.Tensor, mask: torch.Tensor, last: torch.Tensor | None = None
    ) -> torch.Tensor:
        """outputs (B, T, F), mask (B, T), last (B, F) for mode 'last' -> (B, F)."""
        if self.mode == "last":
            if last is None:
                raise ValueError("pooling 'last' needs the encoder's final states")
            return last
        m = mask.unsqueeze(2)  # (B, T, 1)
        if self.mode == "mean":
            return (outputs * m).sum(1) / m.sum(1).clamp(min=1)  # (B, F)
        if self.mode == "max":
            return outputs.masked_fill(~m, float("-inf")).amax(1)  # (B, F)
        scores = self.query(torch.tanh(self.proj(outputs))).squeeze(2)  # (B, T)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(1)  # (B, T)
        return torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)  # (B, F)
