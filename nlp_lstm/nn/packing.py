"""Packed, time-major layout of a padded batch, for recurrences that skip padding.

Sequences are sorted by length, longest first, and the real tokens laid out step by step: the
rows of step t are the first ``batch_sizes[t]`` sorted sequences (those still running), so a
recurrence keeps a shrinking prefix of its state and never computes a padded step. This is the
layout of ``torch.nn.utils.rnn.PackedSequence``; ``Packing`` adds the index maps an encoder needs
(reverse each sequence in place, take each sequence's last step) and packs and unpacks with one
index op each.

Legend: B batch, T time, N real tokens (sum of lengths), F features.
"""

from __future__ import annotations

import torch


class Packing:
    """Index maps between a padded (B, T, F) batch and its packed (N, F) rows.

    Args:
        lengths: (B,) int64 lengths in [1, T], on the data's device; None means all T.
        batch: B.
        steps: T.
    """

    def __init__(self, lengths: torch.Tensor | None, batch: int, steps: int,
                 device: torch.device) -> None:
        B, T = batch, steps
        self.batch, self.steps = B, T
        self.full = lengths is None  # every sequence runs T steps: views instead of index ops
        if lengths is None:  # no index maps: pack, unpack, reverse and last are views
            self.batch_sizes = [B] * T
            self.sorted_indices = torch.arange(B, device=device)  # (B,) already in order
            return
        sorted_lengths, self.sorted_indices = torch.sort(lengths, descending=True, stable=True)
        rank = torch.empty_like(self.sorted_indices)  # (B,) position of each sequence when sorted
        rank[self.sorted_indices] = torch.arange(B, device=device)
        steps_range = torch.arange(int(sorted_lengths[0]), device=device)  # (T',)
        sizes = (sorted_lengths.unsqueeze(0) > steps_range.unsqueeze(1)).sum(1)  # (T',)
        self.batch_sizes: list[int] = sizes.tolist()  # a Python list: the recurrence loops on it
        offsets = sizes.cumsum(0) - sizes  # (T',) first row of each step
        t = torch.repeat_interleave(steps_range, sizes)  # (N,) step of each row
        j = torch.arange(t.numel(), device=device) - offsets[t]  # (N,) sorted position of each row
        self.pack_index = self.sorted_indices[j] * T + t  # (N,) row in the flat (B*T) batch
        self.reverse_index = offsets[sorted_lengths[j] - 1 - t] + j  # (N,) same sequence, mirrored
        self.last_index = offsets[lengths - 1] + rank  # (B,) each sequence's last row, batch order

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (N, F)."""
        if self.full:
            return x.transpose(0, 1).reshape(self.steps * self.batch, -1)  # (T*B, F)
        return x.reshape(self.batch * self.steps, -1).index_select(0, self.pack_index)

    def unpack(self, data: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (B, T, F), zero at padded steps."""
        if self.full:
            return data.view(self.steps, self.batch, -1).transpose(0, 1).contiguous()  # (B, T, F)
        flat = data.new_zeros(self.batch * self.steps, data.size(1))  # (B*T, F)
        return flat.index_copy(0, self.pack_index, data).view(self.batch, self.steps, -1)

    def reverse(self, data: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (N, F), every sequence reversed within its length (an involution)."""
        if self.full:
            return data.view(self.steps, self.batch, -1).flip(0).view(-1, data.size(1))  # (N, F)
        return data.index_select(0, self.reverse_index)

    def last(self, data: torch.Tensor) -> torch.Tensor:
        """(N, F) -> (B, F), each sequence's row at its last real step, in batch order."""
        if self.full:
            return data[-self.batch :]  # (B, F)
        return data.index_select(0, self.last_index)

    def sort(self, state: torch.Tensor) -> torch.Tensor:
        """(B, F) in batch order -> (B, F) in sorted order, the order of the packed rows."""
        if self.full:
            return state
        return state.index_select(0, self.sorted_indices)
