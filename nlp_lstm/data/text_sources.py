"""Sources of plain text for language modelling: Tiny Shakespeare and the user's text files.

(The embedded corpus is ``nlp_lstm.data.corpora.SyntheticText``.) A text source yields a split
as a list of documents and names the ``separator`` that joins them back into the split's text.
Here a document is a line: ``separator.join(lines)`` restores the text exactly, and the
sentences mode of the data module serves each non-empty line as an example.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nlp_lstm.data.base import file_fingerprint, user_file
from nlp_lstm.data.download import fetch
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.readers import read_text, split_tinyshakespeare


class TinyShakespeare:
    """Karpathy's Tiny Shakespeare under ``root/tinyshakespeare/input.txt`` (1,115,394
    characters), split as nanoGPT does: the first 90% of the characters are ``train``
    (1,003,854), the rest ``val`` (111,540). The cut falls inside a line.

    Args:
        download: fetch the file from the char-rnn repository when it is missing.
        urls: overrides of the download source, e.g. a mirror:
            ``{"tinyshakespeare/input.txt": {"url": ..., "sha256": ...}}``.
    """

    splits: tuple[str, ...] = ("train", "val")
    separator: str = "\n"
    file = "tinyshakespeare/input.txt"

    def __init__(self, download: bool = True,
                 urls: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.download = download
        self.urls = dict(urls or {})

    def _path(self, root: Path) -> Path:
        path = root / self.file
        if not path.exists():
            if not self.download:
                raise DataError(f"{path} is missing and data.source.download is false; place "
                                "input.txt there or set data.root (or $NLP_LSTM_DATA)")
            fetch(root, self.file, sources=self.urls)
        return path

    def prepare(self, root: Path) -> None:
        self._path(root)

    def fingerprint(self, root: Path) -> str:
        return file_fingerprint(self._path(root))

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list[str], int]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for Tiny Shakespeare; "
                             f"expected one of {self.splits}")
        train, val = split_tinyshakespeare(read_text(self._path(root)))
        return (train if split == "train" else val).split(self.separator), 0


class TextFiles:
    """The user's own UTF-8 text files (plain or .gz), one per split; Windows line endings
    become ``\\n``.

    Args:
        train: the training text.
        val: the validation text; None: the last ``val_fraction`` of the training text's
            characters is held out as validation (and the rest trains).
        test: an optional test text.
        val_fraction: the share of ``train`` held out when there is no ``val`` file.
    """

    separator: str = "\n"

    def __init__(
        self,
        train: str,
        val: str | None = None,
        test: str | None = None,
        val_fraction: float = 0.1,
    ) -> None:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.paths = {k: Path(v).expanduser() for k, v in
                      (("train", train), ("val", val), ("test", test)) if v}
        self.val_fraction = val_fraction
        self.splits = ("train", "val", *(("test",) if test else ()))

    def _existing(self, split: str) -> Path:
        return user_file(self.paths[split], split)

    def prepare(self, root: Path) -> None:
        for split in self.paths:
            self._existing(split)

    def fingerprint(self, root: Path) -> str:
        # The held-out share changes the training text, so it is part of the identity.
        held_out = "" if "val" in self.paths else f"-{self.val_fraction}"
        return file_fingerprint(self._existing("train")) + held_out

    def _text(self, split: str) -> str:
        return read_text(self._existing(split)).replace("\r\n", "\n")

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list[str], int]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this data has {self.splits}")
        if split in self.paths and (split != "train" or "val" in self.paths):
            text = self._text(split)
        else:  # train and val both come from the train file
            path, whole = self._existing("train"), self._text("train")
            held_out = int(len(whole) * self.val_fraction)
            if held_out == 0 or held_out == len(whole):
                raise DataError(
                    f"{path}: {len(whole)} characters are too few to hold out "
                    f"val_fraction={self.val_fraction} as validation; expected a longer text "
                    "or a val file (data.source.val)")
            cut = len(whole) - held_out
            text = whole[:cut] if split == "train" else whole[cut:]
        return text.split(self.separator), 0
