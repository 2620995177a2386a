"""LightningDataModule for translation: sentence pairs to bucketed, padded teacher-forcing
batches.

Legend: B batch, S source length, T target length (with <bos> or <eos>).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from nlp_lstm.data.base import Source, TextDataModule
from nlp_lstm.data.batching import LengthGuard, pad_sequences
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer

# An encoded pair: source ids (S,) and target ids framed as <bos> ... <eos> (T + 1,).
EncodedPair = tuple[list[int], list[int]]


class TranslationCollate:
    """Collate encoded pairs into ``{"src": (B, S), "src_lengths": (B,), "tgt_in": (B, T),
    "tgt_out": (B, T), "tgt_lengths": (B,)}``, all int64 on CPU, padded with ``pad_id``.

    ``tgt_in`` is the framed target without its last token (it starts with <bos>), ``tgt_out``
    without its first (it ends with <eos>, unless the length guard cut the sentence), so
    ``tgt_out[:, t]`` is what the decoder predicts after reading ``tgt_in[:, :t + 1]``.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: Sequence[EncodedPair]) -> dict[str, torch.Tensor]:
        src, src_lengths = pad_sequences([s for s, _ in examples], self.pad_id)  # (B, S), (B,)
        tgt_in, tgt_lengths = pad_sequences([t[:-1] for _, t in examples], self.pad_id)  # (B, T)
        tgt_out, _ = pad_sequences([t[1:] for _, t in examples], self.pad_id)  # (B, T)
        return {"src": src, "src_lengths": src_lengths, "tgt_in": tgt_in, "tgt_out": tgt_out,
                "tgt_lengths": tgt_lengths}


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

    def __init__(
        self,
        source: Source,
        tokenizer: TokenizerTrainer | None = None,
        target_tokenizer: TokenizerTrainer | None = None,
        root: str | None = None,
        cache_dir: str | None = None,
        trained_tokenizer: str | None = None,
        trained_target_tokenizer: str | None = None,
        batch_size: int | None = 64,
        max_tokens: int | None = None,
        max_length: int = 128,
        on_error: str = "raise",
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(source, tokenizer=tokenizer, root=root, cache_dir=cache_dir,
                         trained_tokenizer=trained_tokenizer, batch_size=batch_size,
                         max_tokens=max_tokens, max_length=max_length, on_error=on_error,
                         num_workers=num_workers, seed=seed)
        self.joint = target_tokenizer is None and trained_target_tokenizer is None
        self.target_tokenizer_trainer = target_tokenizer or self.tokenizer_trainer
        self.target_tokenizer: Tokenizer | None = (
            Tokenizer.from_json(trained_target_tokenizer) if trained_target_tokenizer
            else self.tokenizer if self.joint else None)
        # The framed target is T + 1 long (<bos> ... <eos>), so T stays within max_length.
        self.target_guard = LengthGuard(max_length + 1)

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

    def _caches(self) -> dict[str, Path] | None:
        """Cache files of the tokenizers to train, keyed ``source`` / ``target``."""
        if self.cache_dir is None:
            return None
        base = f"{type(self).__name__}-{self.source.fingerprint(self.root)}"
        folder = self.cache_dir / "tokenizers"
        if self.joint:
            return {"source": folder / f"{base}-joint-{self.tokenizer_trainer.fingerprint()}.json"}
        return {"source": folder / f"{base}-src-{self.tokenizer_trainer.fingerprint()}.json",
                "target": folder / f"{base}-tgt-"
                                   f"{self.target_tokenizer_trainer.fingerprint()}.json"}

    def _train(self, side: str) -> Tokenizer:
        if side == "source":
            return self.tokenizer_trainer.train(self.tokenizer_texts())
        return self.target_tokenizer_trainer.train(self.target_tokenizer_texts())

    def _missing(self) -> tuple[str, ...]:
        """The sides whose tokenizer is neither given nor trained yet."""
        if self.joint:
            return () if self.tokenizer is not None else ("source",)
        return tuple(side for side, tok in (("source", self.tokenizer),
                                            ("target", self.target_tokenizer)) if tok is None)

    def prepare_data(self) -> None:
        self.source.prepare(self.root)
        caches = self._caches() or {}
        for side in self._missing():
            cache = caches.get(side)
            if cache is None or cache.exists():
                continue
            tokenizer = self._train(side)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(tokenizer.to_json(), encoding="utf-8")
            os.replace(tmp, cache)  # atomic: other ranks never see half a file

    def setup(self, stage: str | None = None) -> None:
        missing = self._missing()
        caches = self._caches() if missing else None
        for side in missing:
            cache = (caches or {}).get(side)
            if cache is not None and cache.exists():
                tokenizer = Tokenizer.from_json(cache.read_text(encoding="utf-8"))
            else:
                tokenizer = self._train(side)
            if side == "source":
                self.tokenizer = tokenizer
            else:
                self.target_tokenizer = tokenizer
        if self.joint:
            self.target_tokenizer = self.tokenizer

    # -------------------------------------------------------------- batches
    def _examples(self, split: str) -> list[Any]:
        # Sources with any_split (Multi30k) serve splits beyond their own, e.g. a test set.
        if split not in self.splits and getattr(self.source, "any_split", False):
            if split not in self._raw:
                self._raw[split], self.skipped[split] = self.source.load(split, self.root,
                                                                         self.on_error)
            return self._raw[split]
        return super()._examples(split)

    def dataset(self, split: str) -> list[EncodedPair]:
        """The encoded pairs of a split, tokenized once and cached."""
        if self._missing():
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
        return DataLoader(
            data,
            batch_sampler=self.batch_sampler(lengths, shuffle=shuffle),
            collate_fn=TranslationCollate(self.tokenizer.pad_id),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=self.generator(),
        )

    # ----------------------------------------------------------- statistics
    def statistics(self) -> dict[str, Any]:
        """Tokens and characters count both sides (tokens without <bos>/<eos>); vocab_size is
        the source (or joint) vocabulary; padding_waste = padded positions / real positions of
        src and tgt_in together, over one epoch of training batches."""
        if self._missing():
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
        padded = real = 0
        for batch in self.batch_sampler(lengths, shuffle=True):
            for side in (src_lengths, tgt_lengths):
                sizes = [side[i] for i in batch]
                padded += len(sizes) * max(sizes) - sum(sizes)  # pad positions of (B, S) or (B, T)
                real += sum(sizes)
        stats: dict[str, Any] = {"splits": splits, "vocab_size": self.tokenizer.vocab_size}
        if not self.joint:
            stats["target_vocab_size"] = self.target_tokenizer.vocab_size
        stats["padding_waste"] = padded / real if real else 0.0
        return stats
