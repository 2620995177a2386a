"""The segment recurrent forecaster (after SegRNN, Lin et al. 2023) on the shared encoder.

The recipe that makes a recurrent model competitive on long horizons:
- channel independence: every channel is its own sequence, through the same weights;
- per-window normalisation: subtract the window's last value (or RevIN's mean and std,
  Kim et al. 2022), add it back to the forecast;
- segment inputs: the L rows become L / W segments of W rows, each embedded as one step, so the
  recurrence runs L / W steps instead of L;
- direct multi-horizon decoding: the last state maps to all H values at once, no
  autoregression.

Legend: B batch, L input length, H horizon, C channels, W segment length, S = L / W segments,
E embedding (the encoder's input), D directions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nlp_lstm.nn import build_encoder

NORMALIZATIONS = ("last", "revin", "none")


class SegmentForecaster(nn.Module):
    """Standardised inputs (B, L, C) -> forecasts (B, H, C_out) of the ``targets`` channels.

    Args:
        input_length: L; a multiple of ``segment``.
        horizon: H.
        channels: C, the input channels.
        targets: the indices of the channels to forecast.
        segment: W, rows per segment.
        embedding_dim: E, each segment's embedding.
        encoder: the encoder's settings (``nn.build_encoder``).
        normalization: ``last``, ``revin`` or ``none``.
        dropout: before the output layer.
    """

    def __init__(self, input_length: int, horizon: int, channels: int, targets: Sequence[int],
                 segment: int = 24, embedding_dim: int = 128,
                 encoder: Mapping[str, object] | None = None, normalization: str = "last",
                 dropout: float = 0.0) -> None:
        super().__init__()
        if segment < 1 or input_length % segment:
            raise ValueError(f"input_length {input_length} must be a multiple of the segment "
                             f"length, got segment={segment}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got "
                             f"{normalization!r}")
        if not targets or not all(0 <= t < channels for t in targets):
            raise ValueError(f"targets must be channel indices in [0, {channels}), got "
                             f"{list(targets)}")
        self.input_length, self.horizon, self.channels = input_length, horizon, channels
        self.segment, self.normalization = segment, normalization
        self.register_buffer("targets", torch.tensor(list(targets)), persistent=False)
        self.embed = nn.Linear(segment, embedding_dim)
        self.encoder = build_encoder(embedding_dim, dict(encoder or {"hidden_size": 128}))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size, horizon)
        if normalization == "revin":  # RevIN's learnable affine map, per channel
            self.revin_weight = nn.Parameter(torch.ones(channels))
            self.revin_bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, C) -> (B, H, C_out)."""
        B, L, C = x.shape
        if self.normalization == "last":
            center, scale = x[:, -1:, :], None  # (B, 1, C)
            x = x - center
        elif self.normalization == "revin":
            center = x.mean(1, keepdim=True)  # (B, 1, C)
            scale = (x.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()  # (B, 1, C)
            x = (x - center) / scale * self.revin_weight + self.revin_bias
        series = x.transpose(1, 2).reshape(B * C, L)  # (B*C, L): channel independence
        segments = series.reshape(B * C, L // self.segment, self.segment)  # (B*C, S, W)
        outputs, _ = self.encoder(F.gelu(self.embed(segments)))  # (B*C, S, D*H')
        y = self.head(self.dropout(outputs[:, -1]))  # (B*C, H)
        y = y.reshape(B, C, self.horizon).transpose(1, 2)  # (B, H, C)
        if self.normalization == "last":
            y = y + center
        elif self.normalization == "revin":
            y = (y - self.revin_bias) / (self.revin_weight + 1e-10) * scale + center
        return y.index_select(2, self.targets)  # (B, H, C_out)
