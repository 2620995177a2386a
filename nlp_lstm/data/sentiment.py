"""LightningDataModule for sentiment classification: text sources to padded batches."""

from __future__ import annotations

from typing import Protocol

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from nlp_lstm.data.batching import ClassificationCollate, LengthGuard
from nlp_lstm.data.tokenizer import Tokenizer


class LabeledSource(Protocol):
    """Where labeled text comes from: the embedded corpus, SST-2, the user's TSV files."""

    labels: tuple[str, ...]
    splits: tuple[str, ...]

    def load(self, split: str) -> list[tuple[str, int]]: ...


class SentimentDataModule(pl.LightningDataModule):
    """Tokenizes a labeled source and serves padded batches.

    The tokenizer is trained on the training split only, unless one is given (evaluation of a
    checkpoint passes the checkpoint's own, and then the training split is never read).

    Args:
        source: a ``LabeledSource``.
        batch_size: examples per batch.
        max_length: longer inputs are truncated (and counted in ``truncated``).
        lowercase, min_freq, max_vocab: tokenizer training options.
        num_workers: DataLoader workers.
        tokenizer: a trained tokenizer as JSON, to use instead of training one.
    """

    def __init__(
        self,
        source: LabeledSource,
        batch_size: int = 64,
        max_length: int = 256,
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab: int | None = 30_000,
        num_workers: int = 0,
        tokenizer: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.source = source
        self.batch_size = batch_size
        self.max_length = max_length
        self.lowercase, self.min_freq, self.max_vocab = lowercase, min_freq, max_vocab
        self.num_workers = num_workers
        self.tokenizer = Tokenizer.from_json(tokenizer) if tokenizer else None
        self.guard = LengthGuard(max_length)
        self._encoded: dict[str, list[tuple[list[int], int]]] = {}

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.source.labels)

    @property
    def truncated(self) -> int:
        """How many examples the length guard has cut so far."""
        return self.guard.truncated

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is None:
            texts = [text for text, _ in self.source.load("train")]
            self.tokenizer = Tokenizer.train_word_level(
                texts, lowercase=self.lowercase, min_freq=self.min_freq, max_vocab=self.max_vocab
            )

    def dataset(self, split: str) -> list[tuple[list[int], int]]:
        """The encoded examples of a split, tokenized once and cached."""
        if self.tokenizer is None:
            self.setup()
        if split not in self._encoded:
            pairs = self.source.load(split)
            ids = self.tokenizer.encode_batch([text for text, _ in pairs])
            # An input that tokenizes to nothing still gets one <unk>, so every length is >= 1.
            self._encoded[split] = [
                (self.guard(seq or [self.tokenizer.unk_id]), label)
                for seq, (_, label) in zip(ids, pairs, strict=True)
            ]
        return self._encoded[split]

    def dataloader(self, split: str, *, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=ClassificationCollate(self.tokenizer.pad_id),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")
