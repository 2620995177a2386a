"""Padding of token id sequences (and the length guard, from ``guard.py``).

Legend: B batch, T time (the longest sequence in the batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nlp_lstm.data.guard import LengthGuard

__all__ = ["LengthGuard", "pad_sequences"]


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences into one tensor.

    Returns:
        tokens (B, T) int64 and lengths (B,) int64, both on CPU.
    """
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)  # (B,)
    if int(lengths.min()) < 1:
        raise ValueError("every sequence must hold at least one token")
    tokens = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.int64)
    for row, seq in enumerate(sequences):
        tokens[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.int64)
    return tokens, lengths
