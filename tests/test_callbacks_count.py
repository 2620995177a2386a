"""What the throughput callback counts in a batch: real time steps, whatever the data."""

from __future__ import annotations

import torch

from nlp_lstm.training.callbacks import count_tokens


def test_padded_batches_count_their_lengths():
    batch = {"tokens": torch.zeros(2, 5, dtype=torch.int64), "lengths": torch.tensor([5, 3])}
    assert count_tokens(batch) == 8
    pairs = {"src": torch.zeros(2, 4), "src_lengths": torch.tensor([4, 2]),
             "tgt_in": torch.zeros(2, 3), "tgt_lengths": torch.tensor([3, 1])}
    assert count_tokens(pairs) == 10


def test_unpadded_batches_count_every_step():
    chunks = {"input": torch.zeros(4, 16, dtype=torch.int64),
              "target": torch.zeros(4, 16, dtype=torch.int64), "characters": torch.tensor(64.0)}
    assert count_tokens(chunks) == 64
    # float windows (B, T, F): B*T steps, not B*T*F values
    windows = {"horizon": torch.tensor(3), "series": torch.zeros(8, 24, 5),
               "future": torch.zeros(8, 3, 5)}
    assert count_tokens(windows) == 8 * 24
    assert count_tokens({"input": torch.zeros(8, 24, 5), "target": torch.zeros(8, 1, 5)}) == 192


def test_batches_without_steps_count_nothing():
    assert count_tokens({"features": torch.zeros(8)}) == 0
    assert count_tokens([torch.zeros(2, 3)]) == 0
