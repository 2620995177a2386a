"""Padding and length guarding of token id sequences.

Legend: B batch, T time (the longest sequence in the batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


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


class LengthGuard:
    """Truncates sequences longer than ``max_length`` and counts how many it cut.

    The guard bounds the memory any single input can take, in training and in serving alike.
    """

    def __init__(self, max_length: int) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self.max_length = max_length
        self.truncated = 0

    def __call__(self, ids: list[int]) -> list[int]:
        if len(ids) > self.max_length:
            self.truncated += 1
            return ids[: self.max_length]
        return ids
