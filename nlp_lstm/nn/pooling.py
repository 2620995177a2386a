"""Pooling of encoder outputs into one vector per sequence.

Legend: B batch, T time, F features (D*H for a D-directional encoder of hidden size H).
"""

from __future__ import annotations

import torch
from torch import nn

POOLINGS = ("last", "mean", "max", "attention", "concat")


class Pooling(nn.Module):
    """Pool (B, T, F) outputs under a (B, T) mask (True = real token) into (B, F), or (B, 3F)
    for ``concat``.

    - ``last``: the final states of the last layer, forward and backward concatenated (for a
      bidirectional encoder the backward half is the state after reading back to token 0).
    - ``mean``: mean over real tokens.
    - ``max``: elementwise max over real tokens.
    - ``attention``: softmax-weighted sum with a learned query (Yang et al. 2016).
    - ``concat``: ``last``, ``max`` and ``mean`` side by side (ULMFiT's concat pooling, Howard
      & Ruder 2018): (B, 3F).
    """

    def __init__(self, mode: str, features: int) -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")
        self.mode = mode
        self.output_size = 3 * features if mode == "concat" else features
        if mode == "attention":
            self.proj = nn.Linear(features, features)
            self.query = nn.Linear(features, 1, bias=False)

    def forward(
        self, outputs: torch.Tensor, mask: torch.Tensor, last: torch.Tensor | None = None
    ) -> torch.Tensor:
        """outputs (B, T, F), mask (B, T), last (B, F) for 'last' and 'concat' -> (B, F), or
        (B, 3F) for 'concat'."""
        if self.mode in ("last", "concat") and last is None:
            raise ValueError(f"pooling {self.mode!r} needs the encoder's final states")
        if self.mode == "last":
            return last
        m = mask.unsqueeze(2)  # (B, T, 1)
        if self.mode == "concat":
            return torch.cat([last, self._max(outputs, m), self._mean(outputs, m)], 1)  # (B, 3F)
        if self.mode == "mean":
            return self._mean(outputs, m)
        if self.mode == "max":
            return self._max(outputs, m)
        scores = self.query(torch.tanh(self.proj(outputs))).squeeze(2)  # (B, T)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(1)  # (B, T)
        return torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)  # (B, F)

    @staticmethod
    def _mean(outputs: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return (outputs * m).sum(1) / m.sum(1).clamp(min=1)  # (B, F)

    @staticmethod
    def _max(outputs: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return outputs.masked_fill(~m, float("-inf")).amax(1)  # (B, F)
