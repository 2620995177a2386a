"""Batching: length-bucketed batches for classification and translation, and contiguous
streams for language modelling.

Legend: B batch (streams), T time steps per chunk, N examples, R replicas (DDP ranks).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from nlp_lstm.data.loader import check_batch_limits


def padding_waste(batches: Sequence[Sequence[int]], *lengths: Sequence[int]) -> float:
    """Padded positions divided by real tokens, over the batches (0.0 = no padding).

    One ``lengths`` per padded tensor of a batch, e.g. source and target lengths of translation
    pairs, each padded to its own longest."""
    padded = real = 0
    for batch in batches:
        for side in lengths:
            sizes = [side[i] for i in batch]
            if sizes:
                padded += len(sizes) * max(sizes) - sum(sizes)  # pad positions of (B, T)
                real += sum(sizes)
    return padded / real if real else 0.0


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of examples of similar length, shuffled, reproducible and DDP-aware.

    Each epoch the indices are shuffled and cut into pools of about
    ``bucket_size_multiplier`` batches; a pool is sorted by length and cut into batches,
    and the batches of all pools are shuffled. So batches hold similar lengths (little
    padding) while their composition and order change from epoch to epoch. The open
    last batch of a pool is carried into the next pool, so only the final batch of the
    epoch can be partial. Without ``shuffle``, the whole data set is sorted by length
    (for evaluation: minimal padding, fixed order).

    The order depends only on (seed, epoch): call :meth:`set_epoch` every epoch, as with
    ``DistributedSampler``. Under DDP every rank builds the same global batch list and
    takes every R-th batch; the list is first padded by repeating batches (or, with
    ``drop_last``, truncated) to a multiple of R, so all ranks run the same number of steps.
    With Lightning, set ``use_distributed_sampler=False`` and pass ``num_replicas``/``rank``.

    Args:
        lengths: Length of each example (e.g. its number of tokens).
        batch_size: Most examples per batch.
        max_tokens: Most padded positions per batch, ``len(batch) * max length``; an
            example longer than this forms a batch of its own. At least one of
            batch_size and max_tokens is required; with both, both hold.
        shuffle: Shuffle within and across buckets each epoch.
        seed: Base seed, shared by all ranks.
        bucket_size_multiplier: Batches per pool; larger means less padding and less
            randomness in which examples share a batch.
        drop_last: Drop the partial final batch (with batch_size) and the batches left
            over after an even split across replicas, instead of padding.
        num_replicas: Number of DDP processes.
        rank: This process's rank in ``[0, num_replicas)``.
        even_shards: How ranks get equal numbers of batches (DDP needs every rank in every
            collective). True (training): by repeating batches. False (evaluation): by
            splitting the largest batches, so each example is seen exactly once and metrics
            equal a single process's.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        bucket_size_multiplier: int = 100,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        even_shards: bool = True,
    ) -> None:
        check_batch_limits(batch_size, max_tokens)
        if bucket_size_multiplier < 1:
            raise ValueError(f"bucket_size_multiplier must be >= 1, got {bucket_size_multiplier}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, {num_replicas=}")
        self.lengths = [int(n) for n in lengths]
        if any(n < 0 for n in self.lengths):
            raise ValueError("lengths must be >= 0")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.even_shards = even_shards
        self.epoch = 0
        if batch_size is not None:
            per_batch = batch_size
        else:  # estimate examples per batch from the mean length
            mean = sum(self.lengths) / len(self.lengths) if self.lengths else 1.0
            per_batch = max(1, int(max_tokens // max(1.0, mean)))  # type: ignore[operator]
        self.pool_size = per_batch * bucket_size_multiplier
        self._cache: tuple[tuple[int, int], list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        self.epoch = epoch

    @property
    def sampler(self) -> BucketBatchSampler:
        """This sampler itself. Lightning calls ``set_epoch`` at every epoch's start (also when
        resuming) on ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler``, where
        torch's BatchSampler keeps its sampler, never on the batch sampler: without this every
        epoch repeated the first epoch's batches in the same order."""
        return self

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.seed = int(state.get("seed", self.seed))

    def _full(self, batch: list[int], batch_max: int) -> bool:
        """Whether batch can take no example of length >= batch_max."""
        if self.batch_size is not None and len(batch) >= self.batch_size:
            return True
        return self.max_tokens is not None and (len(batch) + 1) * batch_max > self.max_tokens

    def _cut(self, pool: list[int]) -> list[list[int]]:
        """Greedy batches of a length-sorted pool; the last one may be open."""
        batches: list[list[int]] = []
        batch: list[int] = []
        batch_max = 0
        for i in pool:
            new_max = max(batch_max, self.lengths[i])
            if batch and self._full(batch, new_max):
                batches.append(batch)
                batch, new_max = [], self.lengths[i]
            batch.append(i)
            batch_max = new_max
        if batch:
            batches.append(batch)
        return batches

    def _global_batches(self) -> list[list[int]]:
        """This epoch's batches for all replicas together."""
        key = (self.seed, self.epoch)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        by_length = self.lengths.__getitem__
        if self.shuffle:
            rng = random.Random(f"{self.seed}:{self.epoch}")
            order = list(range(len(self.lengths)))
            rng.shuffle(order)
            batches: list[list[int]] = []
            carry: list[int] = []
            for start in range(0, len(order), self.pool_size):
                pool = sorted(carry + order[start : start + self.pool_size], key=by_length)
                cut = self._cut(pool)
                last_pool = start + self.pool_size >= len(order)
                # An open last batch is completed by the next pool rather than left small.
                open_last = self.max_tokens is not None or len(cut[-1]) < (self.batch_size or 0)
                carry = cut.pop() if open_last and not last_pool else []
                batches.extend(cut)
        else:
            batches = self._cut(sorted(range(len(self.lengths)), key=by_length))
        partial = (
            self.batch_size is not None and bool(batches) and len(batches[-1]) < self.batch_size
        )
        if self.drop_last and partial:
            batches.pop()
        if self.shuffle:
            rng.shuffle(batches)
        replicas = self.num_replicas
        if replicas > 1 and batches and not self.even_shards:
            while len(batches) % replicas and any(len(b) > 1 for b in batches):
                i = max(range(len(batches)), key=lambda j: len(batches[j]))
                half = len(batches[i]) // 2
                batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
        elif replicas > 1 and batches:
            if self.drop_last:
                batches = batches[: len(batches) // replicas * replicas]
            else:
                pad = -len(batches) % replicas
                batches = batches + [batches[i % len(batches)] for i in range(pad)]
        self._cache = (key, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches()[self.rank :: self.num_replicas]:
            yield list(batch)

    def __len__(self) -> int:
        """Exact number of batches this rank yields in the current epoch."""
        total = len(self._global_batches())
        return len(range(self.rank, total, self.num_replicas))


class StreamBatcher(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """One long token sequence as B parallel contiguous streams, cut into (B, T) chunks.

    Item k is ``(inputs, targets)`` with targets = inputs shifted by one token, and item
    k+1 continues item k in every row, so a recurrent state can be carried from one
    chunk to the next (truncated BPTT, as in the classic PTB batching). Iterate in order,
    e.g. ``DataLoader(batcher, batch_size=None, shuffle=False)``.

    The sequence is cut into ``B * R`` equal streams (the remainder is dropped); rank r
    gets streams ``r*B .. r*B+B-1``, so ranks see distinct text and the same number of
    chunks.

    Args:
        ids: The token ids, 1-D.
        batch_size: B, streams per rank.
        seq_len: T, time steps per chunk.
        drop_last: Drop the last chunk when it is shorter than seq_len.
        num_replicas: Number of DDP processes.
        rank: This process's rank.
    """

    def __init__(
        self,
        ids: Sequence[int] | torch.Tensor,
        batch_size: int,
        seq_len: int,
        *,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, {num_replicas=}")
        data = torch.as_tensor(ids, dtype=torch.long).flatten()
        n_streams = batch_size * num_replicas
        stream_len = data.numel() // n_streams
        if stream_len < 2:
            raise ValueError(
                f"{data.numel()} tokens are too few for {n_streams} streams "
                f"(batch_size={batch_size} x num_replicas={num_replicas}); need 2 per stream"
            )
        streams = data[: n_streams * stream_len].view(n_streams, stream_len)
        self.streams = streams[rank * batch_size : (rank + 1) * batch_size].clone()  # (B, L)
        self.seq_len = seq_len
        steps = stream_len - 1  # the last token of a stream is only a target
        self._len = steps // seq_len if drop_last else math.ceil(steps / seq_len)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), both (B, T); the last chunk may have fewer steps."""
        if k < 0:
            k += self._len
        if not 0 <= k < self._len:
            raise IndexError(f"chunk {k} out of range for {self._len} chunks")
        start = k * self.seq_len
        stop = min(start + self.seq_len, self.streams.size(1) - 1)
        inputs = self.streams[:, start:stop].contiguous()
        targets = self.streams[:, start + 1 : stop + 1].contiguous()
        return inputs, targets

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for k in range(self._len):
            yield self[k]
