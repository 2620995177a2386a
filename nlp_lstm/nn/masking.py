"""The one mask helper of the project. Polarity: True = real token, False = padding.

Legend: B batch, T time.
"""

from __future__ import annotations

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
