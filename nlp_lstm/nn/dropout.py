"""Dropout for recurrent language models (Gal & Ghahramani 2016; Merity et al. 2018, AWD-LSTM).

- ``locked_dropout``: one mask per sequence, the same at every time step (variational dropout),
  so a unit is either present for the whole sequence or absent; ordinary dropout draws a new
  mask at every step, which the recurrence averages away.
- ``embedding_dropout``: drops whole rows of the embedding matrix, i.e. every occurrence of a
  word type in the batch, and rescales the kept rows.

Both are the identity in eval mode or with p = 0.

Legend: B batch, T time, F features, V vocab, E embedding size.
"""

from __future__ import annotations

import torch


def _check(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """x (B, T, F) -> (B, T, F), features zeroed with probability p by one (B, 1, F) mask
    shared by all time steps, the kept ones scaled by 1 / (1 - p)."""
    _check(p)
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1.0 - p)  # (B, 1, F)
    return x * mask / (1.0 - p)


def embedding_dropout(weight: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """weight (V, E) -> (V, E), whole rows (word types) zeroed with probability p, the kept
    ones scaled by 1 / (1 - p). One mask per call: a dropped type is dropped at every position
    of every sequence of the batch."""
    _check(p)
    if not training or p == 0.0:
        return weight
    mask = weight.new_empty(weight.size(0), 1).bernoulli_(1.0 - p)  # (V, 1)
    return weight * mask / (1.0 - p)
