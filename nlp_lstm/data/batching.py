"""Padding of variable-length sequences into one batch tensor (and the length guard, from
``guard.py``).

Legend: B batch, T time (the longest sequence in the batch), F features (any trailing shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nlp_lstm.data.guard import LengthGuard

__all__ = ["LengthGuard", "pad_sequences"]


def pad_sequences(
    sequences: Sequence[Any], pad_value: float = 0, dtype: torch.dtype = torch.int64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad sequences along time into one tensor.

    Args:
        sequences: B sequences, each (T_i,) (token ids) or (T_i, F...) (feature vectors):
            lists, numpy arrays or tensors, with T_i >= 1 and one trailing shape for all.
        pad_value: what fills the positions past each sequence's end (a tokenizer's pad id).
        dtype: of the padded tensor; values are converted to it.

    Returns:
        padded (B, T) or (B, T, F...) of ``dtype`` and lengths (B,) int64, both on CPU.
    """
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    rows = [torch.as_tensor(s, dtype=dtype, device="cpu") for s in sequences]
    features = rows[0].shape[1:]
    for i, row in enumerate(rows):
        if row.dim() == 0:
            raise ValueError(f"sequence {i} is a scalar; expected (T,) or (T, F...)")
        if row.shape[1:] != features:
            raise ValueError(f"sequence {i} has steps of shape {tuple(row.shape[1:])}, "
                             f"sequence 0 of shape {tuple(features)}; expected one shape")
    lengths = torch.tensor([row.shape[0] for row in rows], dtype=torch.int64)  # (B,)
    if int(lengths.min()) < 1:
        raise ValueError("every sequence must hold at least one step")
    padded = torch.full((len(rows), int(lengths.max()), *features), pad_value,
                        dtype=dtype)  # (B, T, F...)
    for i, row in enumerate(rows):
        padded[i, : row.shape[0]] = row
    return padded, lengths
