"""DLinear (Zeng et al. 2023, "Are Transformers Effective for Time Series Forecasting?"): the
linear baseline of the long-horizon literature, kept in the repo so that the benchmark re-runs it
under the same evaluator as our model (``benchmarks/forecast.py``).

The input window is split by a moving average into a trend and a seasonal remainder; one linear
map over time each (L -> H), shared by every channel unless ``individual``; the forecast is their
sum. Written from the paper's description.

Legend: B batch, L input length, H horizon, C channels.
"""

from __future__ import annotations

import torch
from torch import nn


class MovingAverage(nn.Module):
    """Centred moving average over time of (B, L, C) -> (B, L, C), the window's first and last
    rows repeated at its ends so the output keeps length L (as the paper's code pads). It reads
    only the input window, so the padding leaks nothing from the future of the forecast."""

    def __init__(self, kernel: int = 25) -> None:
        super().__init__()
        if kernel < 1:
            raise ValueError(f"the moving-average kernel must be positive, got {kernel}")
        self.kernel = kernel
        self.pool = nn.AvgPool1d(kernel, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        front = x[:, :1].expand(-1, (self.kernel - 1) // 2, -1)  # (B, (k-1)//2, C)
        back = x[:, -1:].expand(-1, self.kernel // 2, -1)  # (B, k//2, C)
        padded = torch.cat([front, x, back], dim=1)  # (B, L + k - 1, C)
        return self.pool(padded.transpose(1, 2)).transpose(1, 2)  # (B, L, C)


class DLinear(nn.Module):
    """Forecasts H rows of C channels from L rows: inputs (B, L, C) -> forecasts (B, H, C).

    Args:
        input_length: L.
        horizon: H.
        channels: C (used only when ``individual``).
        kernel: the moving average's width (25 in the paper).
        individual: one pair of linear maps per channel instead of one shared pair.
    """

    def __init__(self, input_length: int, horizon: int, channels: int = 1, kernel: int = 25,
                 individual: bool = False) -> None:
        super().__init__()
        self.input_length, self.horizon, self.channels = input_length, horizon, channels
        self.individual = individual
        self.decompose = MovingAverage(kernel)
        maps = channels if individual else 1
        self.seasonal = nn.ModuleList(nn.Linear(input_length, horizon) for _ in range(maps))
        self.trend = nn.ModuleList(nn.Linear(input_length, horizon) for _ in range(maps))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.shape[1] != self.input_length:
            raise ValueError(f"expected {self.input_length} input rows, got {inputs.shape[1]}")
        trend = self.decompose(inputs)  # (B, L, C)
        seasonal = (inputs - trend).transpose(1, 2)  # (B, C, L)
        trend = trend.transpose(1, 2)  # (B, C, L)
        if self.individual:
            if inputs.shape[2] != self.channels:
                raise ValueError(f"expected {self.channels} channels, got {inputs.shape[2]}")
            out = torch.stack([s(seasonal[:, c]) + t(trend[:, c]) for c, (s, t)
                               in enumerate(zip(self.seasonal, self.trend, strict=True))],
                              dim=1)  # (B, C, H)
        else:
            out = self.seasonal[0](seasonal) + self.trend[0](trend)  # (B, C, H)
        return out.transpose(1, 2)  # (B, H, C)
