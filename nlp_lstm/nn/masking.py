"""The one mask helper of the project. Polarity: True = real token, False = padding.

Legend: B batch, T time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Mask of real positions.

    Args:
        lengths: (B,) integer lengths.
        max_len: T; defaults to ``lengths.max()``.

    Returns:
        (B, T) bool, True where ``t < lengths[b]``.
    """
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    steps = torch.arange(max_len, device=lengths.device)  # (T,)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)


def check_sequences(x: torch.Tensor, input_size: int) -> tuple[int, int]:
    """An encoder's input check: ``x`` must be (B, T, input_size) with B, T > 0; returns (B, T)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 3-D tensor (B, T, {input_size}), got {shape}")
    B, T, features = x.shape
    if features != input_size:
        raise ValueError(f"x has {features} features, expected input_size={input_size}")
    if T == 0 or B == 0:
        raise ValueError(f"x needs at least one sequence and one step, got {tuple(x.shape)}")
    return B, T


def check_lengths(
    lengths: torch.Tensor | Sequence[int] | None, batch: int, steps: int,
    device: torch.device
) -> torch.Tensor | None:
    """An encoder's lengths check: integers in [1, steps], one per row
    of the batch. Returns them as int64 on
    ``device``, or None when every row is full (no padding to handle)."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.numel() != batch:
        raise ValueError(f"lengths must be 1-D of size B={batch}, got shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > steps:
        raise ValueError(f"lengths must lie in [1, T={steps}], got min {lo} and max {hi}")
    if lo == steps:
        return None
    return lengths.to(device=device, dtype=torch.int64)
