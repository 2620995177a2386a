"""Sources of sentence pairs for translation: Multi30k and the user's own line-aligned files.

(The embedded corpus is ``nlp_lstm.data.corpora.SyntheticTranslation``.) A source yields
``(source sentence, target sentence)`` pairs per split and names its two languages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nlp_lstm.data.base import file_fingerprint, user_file
from nlp_lstm.data.download import SOURCES, Source, fetch, multi30k_url
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.readers import MULTI30K_LANGS, multi30k_paths, read_parallel

#: The official Multi30k task 1 test sets: downloadable by name, without a pinned checksum.
MULTI30K_TEST_SPLITS = ("test_2016_flickr", "test_2017_flickr", "test_2017_mscoco",
                        "test_2018_flickr")


class Multi30k:
    """Multi30k task 1 (raw, cased captions) under ``root/multi30k``: files
    ``{split}.{lang}.gz`` (or uncompressed), lines aligned across languages.

    ``splits`` are the splits the data module serves for training and evaluation, and those
    ``prepare`` fetches. ``load`` also takes any other split name (``any_split``): a split whose
    files are under the root is read as it is (e.g. a test set placed there by hand); a missing
    one is downloaded when it is ``train``, ``val`` (checksummed) or one of
    ``MULTI30K_TEST_SPLITS`` (not checksummed), and is an error otherwise.

    Args:
        src_lang, tgt_lang: two of ``en``, ``de``, ``fr``, ``cs``.
        splits: the splits to serve, e.g. ``["train", "val", "test_2016_flickr"]``; the first
            must be ``train`` (the tokenizers learn from it).
        download: fetch missing files.
        urls: overrides of the download sources, e.g. a mirror:
            ``{"multi30k/train.de.gz": {"url": ..., "sha256": ...}}``.
    """

    any_split = True

    def __init__(
        self,
        src_lang: str = "de",
        tgt_lang: str = "en",
        splits: Sequence[str] = ("train", "val"),
        download: bool = True,
        urls: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        for lang in (src_lang, tgt_lang):
            if lang not in MULTI30K_LANGS:
                raise ValueError(f"unknown Multi30k language {lang!r}; "
                                 f"expected one of {MULTI30K_LANGS}")
        if src_lang == tgt_lang:
            raise ValueError(f"src_lang and tgt_lang are both {src_lang!r}; expected two languages")
        self.splits = tuple(splits)
        if not self.splits or self.splits[0] != "train":
            raise ValueError(f"Multi30k splits must start with 'train', got {list(self.splits)}")
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.download = download
        self.urls = dict(urls or {})

    def _paths(self, split: str, root: Path) -> tuple[Path, Path]:
        try:
            return multi30k_paths(root, split, self.src_lang, self.tgt_lang)
        except DataError:
            if not self.download:
                raise DataError(
                    f"Multi30k split {split!r} ({self.src_lang}-{self.tgt_lang}) is missing under "
                    f"{Path(root) / 'multi30k'} and data.source.download is false; place the files "
                    "there or set data.root (or $NLP_LSTM_DATA)") from None
            known = (*SOURCES, *self.urls)
            for lang in (self.src_lang, self.tgt_lang):
                relpath = f"multi30k/{split}.{lang}.gz"
                on_disk = (Path(root) / relpath).is_file() or (Path(root) / relpath[:-3]).is_file()
                if on_disk:
                    continue
                if relpath not in known and split not in MULTI30K_TEST_SPLITS:
                    raise DataError(
                        f"Multi30k split {split!r} is not under {Path(root) / 'multi30k'} and is "
                        f"not downloadable; expected train, val or one of {MULTI30K_TEST_SPLITS}"
                    ) from None
                test_set = {relpath: Source(multi30k_url(split, lang))}
                fetch(root, relpath, sources={**test_set, **SOURCES, **self.urls})
            return multi30k_paths(root, split, self.src_lang, self.tgt_lang)

    def prepare(self, root: Path) -> None:
        for split in self.splits:
            self._paths(split, root)

    def fingerprint(self, root: Path) -> str:
        return file_fingerprint(*self._paths("train", root))

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        return read_parallel(*self._paths(split, root), on_error=on_error)


class ParallelFiles:
    """The user's own line-aligned files, one ``[source file, target file]`` pair per split
    (plain or .gz, UTF-8, one sentence a line).

    Args:
        train, val, test: ``[source path, target path]``; val and test are optional.
        src_lang, tgt_lang: names of the two languages (only for display and checkpoints).
    """

    def __init__(
        self,
        train: Sequence[str],
        val: Sequence[str] | None = None,
        test: Sequence[str] | None = None,
        src_lang: str = "src",
        tgt_lang: str = "tgt",
    ) -> None:
        self.paths: dict[str, tuple[Path, Path]] = {}
        for split, pair in (("train", train), ("val", val), ("test", test)):
            if pair is None:
                continue
            if isinstance(pair, str) or len(pair) != 2:
                raise ValueError(f"data.source.{split} must be [source file, target file], "
                                 f"got {pair!r}")
            self.paths[split] = (Path(pair[0]).expanduser(), Path(pair[1]).expanduser())
        self.splits = tuple(self.paths)
        self.src_lang, self.tgt_lang = src_lang, tgt_lang

    def _existing(self, split: str) -> tuple[Path, Path]:
        source, target = self.paths[split]
        return user_file(source, split), user_file(target, split)

    def prepare(self, root: Path) -> None:
        for split in self.splits:
            self._existing(split)

    def fingerprint(self, root: Path) -> str:
        return file_fingerprint(*self._existing("train"))

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        """(source, target) pairs; ``read_parallel`` raises (or with ``skip`` counts) empty
        sides and invalid UTF-8, and always raises on files of different lengths."""
        return read_parallel(*self._existing(split), on_error=on_error)
