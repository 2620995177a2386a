"""Sources of labeled text for sentiment classification: SST-2 and the user's TSV files.

(The embedded corpus is ``nlp_lstm.data.corpora.SyntheticSentiment``.) A source yields
``(text, label index)`` pairs per split and knows its label names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from nlp_lstm.data.base import file_fingerprint, user_file
from nlp_lstm.data.download import fetch
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.readers import read_labeled_tsv, read_sst2


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
        path = root / self.files[split]
        if not path.exists():
            if not self.download:
                raise DataError(f"{path} is missing and data.source.download is false; place "
                                "SST-2 there or set data.root (or $NLP_LSTM_DATA)")
            fetch(root, self.files[split], sources=self.urls)
        return path

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
