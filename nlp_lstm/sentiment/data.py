"""Sentiment data: sources of labeled text (SST-2, the user's TSV files), collation, and the
LightningDataModule that serves bucketed, padded batches.

(The embedded corpus is ``nlp_lstm.sentiment.corpus.SyntheticSentiment``.) A source yields
``(text, label index)`` pairs per split and knows its label names.

Legend: B batch, T time (the longest sequence in the batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import DataLoader

from nlp_lstm.data.base import TextDataModule, file_fingerprint, user_file
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.data.download import RemoteFile, require
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.readers import read_labeled_tsv, read_sst2
from nlp_lstm.data.sampler import padding_waste

_GLUE_SST2 = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"

#: Canonical sources of SST-2 under the data root. GLUE's train.tsv is not pinned: the shared
#: copy has the same rows in another order.
SST2_FILES: dict[str, RemoteFile] = {
    "sst2/train.tsv": RemoteFile(_GLUE_SST2, None, "SST-2/train.tsv"),
    "sst2/dev.tsv": RemoteFile(
        _GLUE_SST2,
        "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
        "SST-2/dev.tsv",
    ),
}


class SST2:
    """GLUE SST-2 under ``root/sst2``: ``train.tsv`` (67,349 phrases) and ``dev.tsv`` (872
    sentences), served as splits ``train`` and ``val``. GLUE's test labels are not public.

    Args:
        download: fetch missing files from GLUE's ``SST-2.zip``.
        urls: overrides of the download sources, e.g. a mirror:
            ``{"sst2/train.tsv": {"url": ..., "member": "SST-2/train.tsv"}}``.
    """

    labels: tuple[str, ...] = ("negative", "positive")
    splits: tuple[str, ...] = ("train", "val")
    files: ClassVar[dict[str, str]] = {"train": "sst2/train.tsv", "val": "sst2/dev.tsv"}

    def __init__(self, download: bool = True,
                 urls: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.download = download
        self.urls = dict(urls or {})

    def _path(self, split: str, root: Path) -> Path:
        return require(root, self.files[split], sources={**SST2_FILES, **self.urls},
                       download=self.download, what="SST-2")

    def prepare(self, root: Path) -> None:
        for split in self.splits:
            self._path(split, root)

    def fingerprint(self, root: Path) -> str:
        return file_fingerprint(self._path("train", root))

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        return read_sst2(self._path(split, root)), 0


class LabeledTSV:
    """The user's own ``text<TAB>label`` files, one per split; any label names.

    Args:
        train, val, test: file paths (plain or .gz); val and test are optional.
        labels: the label names in class order; None: the sorted names found in ``train``.
        header: whether files start with a header line; None: detect ``...<TAB>label``.
    """

    def __init__(
        self,
        train: str,
        val: str | None = None,
        test: str | None = None,
        labels: Sequence[str] | None = None,
        header: bool | None = None,
    ) -> None:
        self.paths = {k: Path(v).expanduser() for k, v in
                      (("train", train), ("val", val), ("test", test)) if v}
        self.splits = tuple(self.paths)
        self.header = header
        self._labels = tuple(labels) if labels else None

    @property
    def labels(self) -> tuple[str, ...]:
        if self._labels is None:
            rows, _ = read_labeled_tsv(self._existing("train"), header=self.header,
                                       on_error="skip")
            self._labels = tuple(sorted({label for _, label in rows}))
        return self._labels

    def _existing(self, split: str) -> Path:
        return user_file(self.paths[split], split)

    def prepare(self, root: Path) -> None:
        for split in self.splits:
            self._existing(split)

    def fingerprint(self, root: Path) -> str:
        return file_fingerprint(self._existing("train"))

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        path = self._existing(split)
        rows, skipped = read_labeled_tsv(path, header=self.header, on_error=on_error)
        index = {label: i for i, label in enumerate(self.labels)}
        examples = []
        for text, label in rows:
            if label not in index:
                if on_error == "raise":
                    raise DataError(f"{path}: label {label!r} is not one of {list(self.labels)}")
                skipped += 1
                continue
            examples.append((text, index[label]))
        return examples, skipped


class ClassificationCollate:
    """Collate (ids, label, index in the split) examples into ``{"tokens": (B, T),
    "lengths": (B,), "labels": (B,), "index": (B,)}``, all int64 on CPU. The index lets a model
    look up what it keeps per training example (a teacher's logits, in distillation)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[tuple[list[int], int, int]]) -> dict[str, torch.Tensor]:
        tokens, lengths = pad_sequences([ids for ids, _, _ in examples], self.pad_id)
        labels = torch.tensor([label for _, label, _ in examples], dtype=torch.int64)  # (B,)
        index = torch.tensor([i for _, _, i in examples], dtype=torch.int64)  # (B,)
        return {"tokens": tokens, "lengths": lengths, "labels": labels, "index": index}


class WithIndex:
    """A read-only view of a list of (ids, label) examples that yields (ids, label, index)."""

    def __init__(self, data: Sequence[tuple[list[int], int]]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[list[int], int, int]:
        ids, label = self.data[i]
        return ids, label, i


class SentimentDataModule(TextDataModule):
    """Serves ``{"tokens": (B, T), "lengths": (B,), "labels": (B,), "index": (B,)}`` batches
    (see ``ClassificationCollate``).

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
        sampler = self.batch_sampler([len(ids) for ids, _ in data], shuffle=shuffle)
        return self.loader(WithIndex(data), ClassificationCollate(self.tokenizer.pad_id), sampler)

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
