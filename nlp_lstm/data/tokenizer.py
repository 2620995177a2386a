"""Tokenizers built with the ``tokenizers`` library and carried inside checkpoints as JSON.

Special tokens have fixed ids in every vocabulary: ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2,
``<eos>`` 3.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer as _Backend
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Tokenizer:
    """A thin, typed wrapper around a ``tokenizers.Tokenizer`` with our special tokens."""

    def __init__(self, backend: _Backend) -> None:
        for i, token in enumerate(SPECIALS):
            if backend.token_to_id(token) != i:
                raise ValueError(f"tokenizer must map {token} to id {i}, "
                                 f"got {backend.token_to_id(token)}")
        self.backend = backend

    @classmethod
    def train_word_level(
        cls,
        texts: Iterable[str],
        *,
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab: int | None = None,
    ) -> Tokenizer:
        """Train a word-level vocabulary: Unicode-normalized, optionally lowercased words, with
        every punctuation character a token of its own. Words seen fewer than ``min_freq`` times
        and those beyond the ``max_vocab`` most frequent (specials included) map to ``<unk>``."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        if max_vocab is not None and max_vocab <= len(SPECIALS):
            raise ValueError(f"max_vocab must exceed the {len(SPECIALS)} specials, got {max_vocab}")
        backend = _Backend(models.WordLevel(unk_token=UNK))
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        backend.normalizer = normalizers.Sequence(steps)
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
        )
        backend.decoder = decoders.WordPiece()  # joins tokens with spaces
        trainer = trainers.WordLevelTrainer(
            vocab_size=max_vocab or 10**9, min_frequency=min_freq, special_tokens=list(SPECIALS),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend)

    @classmethod
    def from_json(cls, data: str) -> Tokenizer:
        return cls(_Backend.from_str(data))

    def to_json(self) -> str:
        return self.backend.to_str()

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    pad_id, unk_id, bos_id, eos_id = range(4)

    def tokenize(self, text: str) -> list[str]:
        return self.backend.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=True)
