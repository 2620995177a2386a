"""LightningDataModule for sentiment classification: labeled text to bucketed, padded batches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch.utils.data import DataLoader

from nlp_lstm.data.base import TextDataModule
from nlp_lstm.data.batching import ClassificationCollate
from nlp_lstm.data.sampler import padding_waste


class SentimentDataModule(TextDataModule):
    """Serves ``{"tokens": (B, T), "lengths": (B,), "labels": (B,)}`` batches.

    The source must also have ``labels``, the label names in class order. Arguments are those of
    ``TextDataModule``.
    """

    task = "sentiment"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.source.labels)

    def tokenizer_texts(self) -> Iterable[str]:
        return [text for text, _ in self._examples("train")]

    def dataset(self, split: str) -> list[tuple[list[int], int]]:
        """The encoded examples of a split, tokenized once and cached."""
        if self.tokenizer is None:
            self.setup()
        if split not in self._encoded:
            pairs = self._examples(split)
            ids = self.tokenizer.encode_batch([text for text, _ in pairs])
            # An input that tokenizes to nothing still gets one <unk>, so every length is >= 1.
            self._encoded[split] = [
                (self.guard(seq or [self.tokenizer.unk_id]), label)
                for seq, (_, label) in zip(ids, pairs, strict=True)
            ]
        return self._encoded[split]

    def dataloader(self, split: str, *, shuffle: bool = False) -> DataLoader:
        data = self.dataset(split)
        return DataLoader(
            data,
            batch_sampler=self.batch_sampler([len(ids) for ids, _ in data], shuffle=shuffle),
            collate_fn=ClassificationCollate(self.tokenizer.pad_id),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=self.generator(),
        )

    def statistics(self) -> dict[str, Any]:
        splits = {}
        for split in self.splits:
            texts = self._examples(split)
            splits[split] = {
                "examples": len(texts),
                "tokens": sum(len(ids) for ids, _ in self.dataset(split)),
                "characters": sum(len(text) for text, _ in texts),
            }
            if self.skipped.get(split):
                splits[split]["skipped"] = self.skipped[split]
        lengths = [len(ids) for ids, _ in self.dataset("train")]
        batches = list(self.batch_sampler(lengths, shuffle=True))
        return {"splits": splits, "vocab_size": self.tokenizer.vocab_size,
                "padding_waste": padding_waste(batches, lengths)}
