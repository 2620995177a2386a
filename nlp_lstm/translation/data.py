"""Translation data: sources of sentence pairs (Multi30k, the user's line-aligned files),
collation, and the LightningDataModule that serves bucketed teacher-forcing batches.

(The embedded corpus is ``nlp_lstm.translation.corpus.SyntheticTranslation``.) A source yields
``(source sentence, target sentence)`` pairs per split and names its two languages.

Legend: B batch, S source length, T target length (with <bos> or <eos>).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from nlp_lstm.data.base import Source, TextDataModule, ToFit, file_fingerprint, user_file
from nlp_lstm.data.batching import LengthGuard, pad_sequences
from nlp_lstm.data.download import RemoteFile, fetch
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.readers import read_parallel
from nlp_lstm.data.sampler import padding_waste
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer

MULTI30K_LANGS = ("en", "de", "fr", "cs")
_MULTI30K = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"


def multi30k_url(split: str, lang: str) -> str:
    """Canonical URL of a Multi30k task 1 raw file, for any split name (e.g. test_2016_flickr)."""
    return f"{_MULTI30K}/{split}.{lang}.gz"


# Checksums of the files whose bytes are stable upstream (see the shared data README).
_MULTI30K_SHA256 = {
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
}

#: Canonical sources of Multi30k train and val under the data root.
MULTI30K_FILES: dict[str, RemoteFile] = {
    f"multi30k/{split}.{lang}.gz": RemoteFile(multi30k_url(split, lang),
                                             _MULTI30K_SHA256[f"{split}.{lang}.gz"])
    for split in ("train", "val")
    for lang in MULTI30K_LANGS
}


_MULTI30K_NAME = re.compile(r"^(?P<split>.+)\.(?P<lang>en|de|fr|cs)(\.gz)?$")


def multi30k_paths(root: Path | str, split: str, src_lang: str, tgt_lang: str) -> tuple[Path, Path]:
    """Paths of ``root/multi30k/{split}.{lang}.gz`` (or uncompressed) for both languages.

    Any split name on disk works (train, val, test_2016_flickr, ...).

    Raises:
        DataError: unknown language, or a missing file; the message lists the splits
            (and their languages) that the folder has.
    """
    folder = Path(root) / "multi30k"
    for lang in (src_lang, tgt_lang):
        if lang not in MULTI30K_LANGS:
            raise DataError(f"unknown Multi30k language {lang!r}; expected one of {MULTI30K_LANGS}")
    found = []
    for lang in (src_lang, tgt_lang):
        candidates = [folder / f"{split}.{lang}.gz", folder / f"{split}.{lang}"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DataError(
                f"Multi30k file {candidates[0]} (or {candidates[1].name}) not found; "
                f"{_describe_splits(folder)}"
            )
        found.append(path)
    return found[0], found[1]


def _describe_splits(folder: Path) -> str:
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    splits: dict[str, set[str]] = {}
    for entry in folder.iterdir():
        match = _MULTI30K_NAME.match(entry.name)
        if match and entry.is_file():
            splits.setdefault(match["split"], set()).add(match["lang"])
    if not splits:
        return f"{folder} has no {{split}}.{{lang}}[.gz] files"
    listed = ", ".join(f"{s} ({' '.join(sorted(langs))})" for s, langs in sorted(splits.items()))
    return f"splits in {folder}: {listed}"


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
            known = (*MULTI30K_FILES, *self.urls)
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
                test_set = {relpath: RemoteFile(multi30k_url(split, lang))}
                fetch(root, relpath, sources={**test_set, **MULTI30K_FILES, **self.urls})
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


# An encoded pair: source ids (S,) and target ids framed as <bos> ... <eos> (T + 1,).
EncodedPair = tuple[list[int], list[int]]


class TranslationCollate:
    """Collate (encoded pair, raw target sentence, index in the split) examples into
    ``{"src": (B, S), "src_lengths": (B,), "tgt_in": (B, T), "tgt_out": (B, T),
    "tgt_lengths": (B,), "index": (B,)}``, all int64 on CPU, padded with ``pad_id``, and
    ``"references"``: the B raw target sentences (what BLEU compares a translation with).

    ``tgt_in`` is the framed target without its last token (it starts with <bos>), ``tgt_out``
    without its first (it ends with <eos>, unless the length guard cut the sentence), so
    ``tgt_out[:, t]`` is what the decoder predicts after reading ``tgt_in[:, :t + 1]``.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[tuple[EncodedPair, str, int]]) -> dict[str, Any]:
        pairs = [pair for pair, _, _ in examples]
        src, src_lengths = pad_sequences([s for s, _ in pairs], self.pad_id)  # (B, S), (B,)
        tgt_in, tgt_lengths = pad_sequences([t[:-1] for _, t in pairs], self.pad_id)  # (B, T)
        tgt_out, _ = pad_sequences([t[1:] for _, t in pairs], self.pad_id)  # (B, T)
        return {"src": src, "src_lengths": src_lengths, "tgt_in": tgt_in, "tgt_out": tgt_out,
                "tgt_lengths": tgt_lengths, "index": torch.tensor([i for _, _, i in examples]),
                "references": [ref for _, ref, _ in examples]}


class TranslationDataModule(TextDataModule):
    """Serves teacher-forcing batches (see ``TranslationCollate``) of a parallel source.

    The source must also name ``src_lang`` and ``tgt_lang``. A source with ``any_split`` (such
    as Multi30k) also serves split names beyond its ``splits`` through ``dataset`` and
    ``dataloader``, e.g. a test set for evaluation.

    Vocabularies: with ``target_tokenizer`` None (and no ``trained_target_tokenizer``), one
    joint tokenizer learns from both sides of the training split and serves both; otherwise
    ``tokenizer`` learns the source side and ``target_tokenizer`` the target side. Both learn
    from the training split only, deterministically, and are cached as JSON under ``cache_dir``.

    ``max_length`` bounds S and T: longer sentences are cut (the target before its <eos>, so a
    cut target teaches no false ending) and counted in ``truncated``. Batches are bucketed by
    ``max(S, T)``.

    Args:
        target_tokenizer: how to train a separate target tokenizer; None: joint vocabulary.
        trained_target_tokenizer: a separate target tokenizer as JSON (from a checkpoint).
        Others: those of ``TextDataModule``; ``tokenizer`` / ``trained_tokenizer`` are the
        source (or joint) tokenizer.
    """

    task = "translation"
    default_loader = LoaderOptions(max_length=128)

    def __init__(
        self,
        source: Source,
        tokenizer: TokenizerTrainer | None = None,
        target_tokenizer: TokenizerTrainer | None = None,
        root: str | None = None,
        cache_dir: str | None = None,
        trained_tokenizer: str | None = None,
        trained_target_tokenizer: str | None = None,
        loader: LoaderOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(source, tokenizer=tokenizer, root=root, cache_dir=cache_dir,
                         trained_tokenizer=trained_tokenizer, loader=loader)
        self.joint = target_tokenizer is None and trained_target_tokenizer is None
        self.target_tokenizer_trainer = target_tokenizer or self.tokenizer_trainer
        self.target_tokenizer: Tokenizer | None = (
            Tokenizer.from_json(trained_target_tokenizer) if trained_target_tokenizer
            else self.tokenizer if self.joint else None)
        # The framed target is T + 1 long (<bos> ... <eos>), so T stays within max_length.
        self.target_guard = LengthGuard(self.options.max_length + 1)

    @property
    def src_lang(self) -> str:
        return self.source.src_lang

    @property
    def tgt_lang(self) -> str:
        return self.source.tgt_lang

    @property
    def truncated(self) -> int:
        """How many sentences (source and target sides counted apart) the guards have cut."""
        return self.guard.truncated + self.target_guard.truncated

    # ----------------------------------------------------------- tokenizers
    def tokenizer_texts(self) -> Iterable[str]:
        """Joint: both sides of the training split; separate: its source side."""
        pairs = self._examples("train")
        if self.joint:
            return [text for pair in pairs for text in pair]
        return [src for src, _ in pairs]

    def target_tokenizer_texts(self) -> Iterable[str]:
        return [tgt for _, tgt in self._examples("train")]

    def fitted_names(self) -> tuple[str, ...]:
        """The source (or joint) tokenizer, and the target one unless joint (a joint model
        takes ``target_tokenizer=None``)."""
        return ("tokenizer",) if self.joint else ("tokenizer", "target_tokenizer")

    def fitted_to_build(self) -> dict[str, ToFit]:
        if self.joint:  # one tokenizer learns both sides
            if self.tokenizer is not None:
                return {}
            return {"tokenizer": self.tokenizer_to_fit(self.tokenizer_trainer,
                                                       self.tokenizer_texts, "joint-")}
        todo = {}
        if self.tokenizer is None:
            todo["tokenizer"] = self.tokenizer_to_fit(self.tokenizer_trainer,
                                                      self.tokenizer_texts, "src-")
        if self.target_tokenizer is None:
            todo["target_tokenizer"] = self.tokenizer_to_fit(self.target_tokenizer_trainer,
                                                             self.target_tokenizer_texts, "tgt-")
        return todo

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.joint:
            self.target_tokenizer = self.tokenizer

    # -------------------------------------------------------------- batches
    def dataset(self, split: str) -> list[EncodedPair]:
        """The encoded pairs of a split, tokenized once and cached."""
        if self.fitted_to_build():
            self.setup()
        if split not in self._encoded:
            pairs = self._examples(split)
            src_ids = self.tokenizer.encode_batch([src for src, _ in pairs])
            tgt_ids = self.target_tokenizer.encode_batch([tgt for _, tgt in pairs])
            bos, eos = self.target_tokenizer.bos_id, self.target_tokenizer.eos_id
            # A sentence that tokenizes to nothing still gets one <unk>, so every S and T >= 1.
            unk = [self.tokenizer.unk_id]
            self._encoded[split] = [
                (self.guard(s or unk), self.target_guard([bos, *(t or unk), eos]))
                for s, t in zip(src_ids, tgt_ids, strict=True)
            ]
        return self._encoded[split]

    @staticmethod
    def _lengths(data: list[EncodedPair]) -> tuple[list[int], list[int]]:
        """S and T of every pair (T: the framed target minus one)."""
        return [len(s) for s, _ in data], [len(t) - 1 for _, t in data]

    def dataloader(self, split: str, *, shuffle: bool = False) -> DataLoader:
        data = self.dataset(split)
        src_lengths, tgt_lengths = self._lengths(data)
        lengths = [max(s, t) for s, t in zip(src_lengths, tgt_lengths, strict=True)]
        references = [tgt for _, tgt in self._examples(split)]
        return self.loader(list(zip(data, references, range(len(data)), strict=True)),
                           TranslationCollate(self.tokenizer.pad_id),
                           self.batch_sampler(lengths, shuffle=shuffle))

    # ----------------------------------------------------------- statistics
    def statistics(self) -> dict[str, Any]:
        """Tokens and characters count both sides (tokens without <bos>/<eos>); vocab_size is
        the source (or joint) vocabulary; padding_waste = padded positions / real positions of
        src and tgt_in together, over one epoch of training batches."""
        if self.fitted_to_build():
            self.setup()
        eos = self.target_tokenizer.eos_id
        splits = {}
        for split in self.splits:
            pairs = self._examples(split)
            splits[split] = {
                "examples": len(pairs),
                # the framed target less <bos>, and less <eos> unless the guard cut it off
                "tokens": sum(len(s) + len(t) - 1 - (t[-1] == eos) for s, t in self.dataset(split)),
                "characters": sum(len(src) + len(tgt) for src, tgt in pairs),
            }
            if self.skipped.get(split):
                splits[split]["skipped"] = self.skipped[split]
        src_lengths, tgt_lengths = self._lengths(self.dataset("train"))
        lengths = [max(s, t) for s, t in zip(src_lengths, tgt_lengths, strict=True)]
        batches = list(self.batch_sampler(lengths, shuffle=True))
        stats: dict[str, Any] = {"splits": splits, "vocab_size": self.tokenizer.vocab_size}
        if not self.joint:
            stats["target_vocab_size"] = self.target_tokenizer.vocab_size
        stats["padding_waste"] = padding_waste(batches, src_lengths, tgt_lengths)
        return stats
