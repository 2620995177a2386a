"""The segment recurrent forecaster (after SegRNN, Lin et al. 2023) on the shared encoder.

The recipe that makes a recurrent model competitive on long horizons:
- channel independence: every channel is its own sequence, through the same weights;
- per-window normalisation: subtract the window's last value (or RevIN's mean and std,
  Kim et al. 2022), add it back to the forecast;
- segment inputs: the L rows become L / W segments of W rows, each embedded as one step, so the
  recurrence runs L / W steps instead of L;
- direct multi-horizon decoding: the last state maps to all H values at once, no
  autoregression.

The article's three ideas for time series, each an option (off by default):
- multi-scale: ``segment`` a list, one branch (embedding and encoder) per segment length, their
  last states concatenated;
- statistical features: ``moving_averages`` adds trailing moving averages of the (normalised)
  window as features of every row, computed from the window only;
- hybrids: ``conv_kernel`` a causal Conv1d front end whose features join every row's;
  ``mixer_layers`` a small causal Transformer over the encoder's segment states.
Known-future covariates (``covariates`` calendar features) enter every segment's embedding and,
for the horizon, the output layer; ``quantiles`` makes the output layer forecast quantiles,
rearranged to be monotone.

Legend: B batch, L input length, H horizon, C channels, W segment length, S = L / W segments,
E embedding (the encoder's input), F features a row, K covariates a row, Q quantiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nlp_lstm.nn import TransformerEncoder, build_encoder

NORMALIZATIONS = ("last", "revin", "none")


def trailing_means(series: torch.Tensor, kernel: int) -> torch.Tensor:
    """series (N, L) -> (N, L): the mean of rows max(0, t-kernel+1)..t, so row t never reads a
    later row (the first rows average what the window has)."""
    sums = F.pad(series.cumsum(1), (1, 0))  # (N, L+1), sums[:, t] = rows before t
    t = torch.arange(1, series.shape[1] + 1, device=series.device)
    start = (t - kernel).clamp(min=0)
    return (sums[:, t] - sums[:, start]) / (t - start)  # (N, L)


def check_quantiles(quantiles: Sequence[float]) -> list[float]:
    """Strictly increasing levels in (0, 1) with the median among them (the point forecast),
    or none; a ValueError names what is wrong."""
    levels = [float(q) for q in quantiles]
    if levels and (any(not 0 < q < 1 for q in levels) or levels != sorted(set(levels))
                   or 0.5 not in levels):
        raise ValueError(f"quantiles must be increasing levels in (0, 1) that include 0.5 (the "
                         f"point forecast), got {levels}")
    return levels


class SegmentForecaster(nn.Module):
    """Standardised inputs (B, L, C) -> forecasts (B, H, C_out) of the ``targets`` channels, or
    (B, H, C_out, Q) with ``quantiles``.

    Args:
        input_length: L; a multiple of every segment length.
        horizon: H.
        channels: C, the input channels.
        targets: the indices of the channels to forecast.
        segment: W, rows per segment; a list of lengths for parallel branches (multi-scale).
        embedding_dim: E, each segment's embedding.
        encoder: the encoder's settings (``nn.build_encoder``).
        normalization: ``last``, ``revin`` or ``none``.
        dropout: before the output layer (and in the mixer).
        moving_averages: kernels of trailing moving averages added as row features.
        conv_kernel: the width of a causal Conv1d front end (0: none), ``conv_channels`` out.
        mixer_layers: causal Transformer layers over the segment states (0: none).
        covariates: K, known-future covariates a row (calendar features; 0: none).
        quantiles: quantile levels to forecast (with 0.5); none for a point forecast.
    """

    def __init__(self, input_length: int, horizon: int, channels: int, targets: Sequence[int],
                 segment: int | Sequence[int] = 24, embedding_dim: int = 128,
                 encoder: Mapping[str, object] | None = None, normalization: str = "last",
                 dropout: float = 0.0, moving_averages: Sequence[int] = (),
                 conv_kernel: int = 0, conv_channels: int = 8, mixer_layers: int = 0,
                 covariates: int = 0, quantiles: Sequence[float] = ()) -> None:
        super().__init__()
        segments = [segment] if isinstance(segment, int) else list(segment)
        if not segments or any(w < 1 or input_length % w for w in segments):
            raise ValueError(f"input_length {input_length} must be a multiple of every segment "
                             f"length, got segment={segment}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got "
                             f"{normalization!r}")
        if not targets or not all(0 <= t < channels for t in targets):
            raise ValueError(f"targets must be channel indices in [0, {channels}), got "
                             f"{list(targets)}")
        if any(k < 2 for k in moving_averages) or conv_kernel < 0 or mixer_layers < 0:
            raise ValueError(f"moving-average kernels must be >= 2 and conv_kernel, mixer_layers"
                             f" >= 0, got {list(moving_averages)}, {conv_kernel}, {mixer_layers}")
        self.input_length, self.horizon, self.channels = input_length, horizon, channels
        self.segments, self.normalization = segments, normalization
        self.moving_averages, self.covariates = list(moving_averages), covariates
        self.quantiles = check_quantiles(quantiles)
        self.register_buffer("targets", torch.tensor(list(targets)), persistent=False)
        features = 1 + len(self.moving_averages)  # F: the value and its moving averages
        self.conv = None
        if conv_kernel:  # causal: left padding only, so row t reads rows <= t
            self.conv = nn.Sequential(nn.ConstantPad1d((conv_kernel - 1, 0), 0.0),
                                      nn.Conv1d(features, conv_channels, conv_kernel), nn.GELU())
            features += conv_channels
        settings = dict(encoder or {"hidden_size": 128})
        self.embeds = nn.ModuleList(nn.Linear(w * (features + covariates), embedding_dim)
                                    for w in segments)
        self.encoders = nn.ModuleList(build_encoder(embedding_dim, settings) for _ in segments)
        width = self.encoders[0].output_size
        self.mixers = nn.ModuleList(  # the shared Transformer encoder, causal
            TransformerEncoder(width, width, mixer_layers, nhead=4 if width % 4 == 0 else 1,
                               dim_feedforward=2 * width, dropout=dropout, causal=True)
            for _ in segments) if mixer_layers else None
        fused = width * len(segments)
        self.future = None
        if covariates:  # the horizon's covariates, embedded once, join the last state
            self.future = nn.Linear(horizon * covariates, embedding_dim)
            fused += embedding_dim
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(fused, horizon * max(1, len(self.quantiles)))
        if normalization == "revin":  # RevIN's learnable affine map, per channel
            self.revin_weight = nn.Parameter(torch.ones(channels))
            self.revin_bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, marks_in: torch.Tensor | None = None,
                marks_out: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, C); with covariates, marks_in (B, L, K) and marks_out (B, H, K) ->
        (B, H, C_out) or (B, H, C_out, Q)."""
        B, L, C = x.shape
        if self.covariates and (marks_in is None or marks_out is None):
            raise ValueError(f"this model reads {self.covariates} covariates a row: pass "
                             "marks_in (B, L, K) and marks_out (B, H, K)")
        if self.normalization == "last":
            center, scale = x[:, -1:, :], None  # (B, 1, C)
            x = x - center
        elif self.normalization == "revin":
            center = x.mean(1, keepdim=True)  # (B, 1, C)
            scale = (x.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()  # (B, 1, C)
            x = (x - center) / scale * self.revin_weight + self.revin_bias
        series = x.transpose(1, 2).reshape(B * C, L)  # (B*C, L): channel independence
        rows = torch.stack([series] + [trailing_means(series, k) for k in self.moving_averages],
                           1)  # (B*C, F, L)
        if self.conv is not None:
            rows = torch.cat([rows, self.conv(rows)], 1)  # (B*C, F, L)
        rows = rows.transpose(1, 2)  # (B*C, L, F)
        if self.covariates:
            rows = torch.cat([rows, marks_in.repeat_interleave(C, 0)], 2)  # (B*C, L, F+K)
        states = []
        for i, (w, embed, encoder) in enumerate(zip(self.segments, self.embeds, self.encoders,
                                                    strict=True)):
            steps = rows.reshape(B * C, L // w, -1)  # (B*C, S, W*(F+K)): a segment a step
            outputs, _ = encoder(F.gelu(embed(steps)))  # (B*C, S, D*H')
            if self.mixers is not None:  # causal: a state reads earlier segments only
                outputs, _ = self.mixers[i](outputs)  # (B*C, S, D*H')
            states.append(outputs[:, -1])  # (B*C, D*H')
        if self.future is not None:
            future = F.gelu(self.future(marks_out.reshape(B, -1)))  # (B, E)
            states.append(future.repeat_interleave(C, 0))  # (B*C, E)
        y = self.head(self.dropout(torch.cat(states, 1)))  # (B*C, H*Q)
        y = y.reshape(B, C, self.horizon, -1).permute(0, 2, 1, 3)  # (B, H, C, Q)
        if self.normalization == "last":
            y = y + center[..., None]
        elif self.normalization == "revin":
            y = ((y - self.revin_bias[:, None]) / (self.revin_weight[:, None] + 1e-10)
                 * scale[..., None] + center[..., None])
        y = y.index_select(2, self.targets)  # (B, H, C_out, Q)
        if not self.quantiles:
            return y.squeeze(3)  # (B, H, C_out)
        return y.sort(3).values  # monotone in the level (rearrangement, Chernozhukov 2010)
