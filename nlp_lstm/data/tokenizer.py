"""Tokenizers built with the ``tokenizers`` library and carried inside checkpoints as JSON.

Four kinds, all deterministic given their training text:
- ``word``: words and single punctuation marks; rare words map to ``<unk>``.
- ``bpe``: byte-level BPE (Sennrich et al. 2016; the GPT-2 byte alphabet), so any text encodes
  without ``<unk>`` and decodes back exactly.
- ``sp_bpe``: SentencePiece-style BPE (as ``spm_train --model_type=bpe
  --character_coverage=1.0``): a word-initial ``▁`` marks spaces, merges start from the
  training text's characters, so an accented letter is one symbol, not two bytes; a character
  never seen in training maps to ``<unk>``.
- ``char``: one token per character, decoded by concatenation.

Special tokens have fixed ids in every vocabulary: ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2,
``<eos>`` 3.

The text normaliser is part of the tokenizer (``NORMALIZERS``), so it travels inside every
checkpoint and export with the vocabulary: a model pretrained on raw web reviews and fine-tuned
on SST-2's Penn-Treebank-tokenised sentences sees both through the same normaliser.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as _Backend

from nlp_lstm.fitted import load_fitted, save_fitted

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
METASPACE = "\u2581"  # ▁, SentencePiece's mark of a space


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
        normalize: str = "nfkc",
    ) -> Tokenizer:
        """Train a word-level vocabulary: Unicode-normalized, optionally lowercased words, with
        every punctuation character a token of its own. Words seen fewer than ``min_freq`` times
        and those beyond the ``max_vocab`` most frequent (specials included) map to ``<unk>``.
        ``normalize``: one of ``NORMALIZERS``."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        if max_vocab is not None and max_vocab <= len(SPECIALS):
            raise ValueError(f"max_vocab must exceed the {len(SPECIALS)} specials, got {max_vocab}")
        backend = _Backend(models.WordLevel(unk_token=UNK))
        backend.normalizer = _normalizer(lowercase, normalize)
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
    def train_bpe(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int = 8000,
        lowercase: bool = False,
        min_freq: int = 2,
        normalize: str = "nfkc",
        byte_level: bool = True,
    ) -> Tokenizer:
        """Train a BPE vocabulary of at most ``vocab_size`` tokens, specials and the alphabet
        included: byte-level (the 256 byte symbols), or with ``byte_level=False``
        SentencePiece-style (kind ``sp_bpe``: the training text's characters, spaces marked
        with a word-initial ``▁``); ``normalize``: one of ``NORMALIZERS``."""
        smallest = len(SPECIALS) + (256 if byte_level else 1)
        if vocab_size < smallest:
            raise ValueError(f"vocab_size for {'bpe' if byte_level else 'sp_bpe'} must be at "
                             f"least {smallest} (specials and the alphabet), got {vocab_size}")
        if byte_level:
            backend = _Backend(models.BPE())
            backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            backend.decoder = decoders.ByteLevel()
            alphabet = pre_tokenizers.ByteLevel.alphabet()
        else:
            backend = _Backend(models.BPE(unk_token=UNK))
            backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE,
                                                             prepend_scheme="always")
            backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
            alphabet = []
        backend.normalizer = _normalizer(lowercase, normalize)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_freq, special_tokens=list(SPECIALS),
            initial_alphabet=alphabet, show_progress=False,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend)

    @classmethod
    def train_char(
        cls, texts: Iterable[str], *, lowercase: bool = False, min_freq: int = 1
    ) -> Tokenizer:
        """Train a character vocabulary; characters seen fewer than ``min_freq`` times map to
        ``<unk>``. No Unicode normalization, so text round-trips exactly."""
        backend = _Backend(models.WordLevel(unk_token=UNK))
        if lowercase:
            backend.normalizer = normalizers.Lowercase()
        backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        backend.decoder = decoders.Fuse()
        trainer = trainers.WordLevelTrainer(
            vocab_size=10**9, min_frequency=min_freq, special_tokens=list(SPECIALS),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend)

    @classmethod
    def from_json(cls, data: str) -> Tokenizer:
        return cls(_Backend.from_str(data))

    def to_json(self) -> str:
        return self.backend.to_str()

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        return load_fitted(cls, path)

    def save(self, path: Path) -> None:
        """Write the JSON atomically (``nlp_lstm.fitted.save_fitted``)."""
        save_fitted(self, path)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    pad_id, unk_id, bos_id, eos_id = range(4)

    @property
    def kind(self) -> str:
        """``word``, ``bpe``, ``sp_bpe`` or ``char``, as trained (see ``TokenizerTrainer``)."""
        if isinstance(self.backend.model, models.BPE):
            return "sp_bpe" if isinstance(self.backend.pre_tokenizer,
                                          pre_tokenizers.Metaspace) else "bpe"
        return "char" if isinstance(self.backend.decoder, decoders.Fuse) else "word"

    def tokenize(self, text: str) -> list[str]:
        return self.backend.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=True)


#: Text normalisers, applied before the vocabulary:
#: - ``nfkc``: Unicode NFKC only.
#: - ``review``: NFKC, then what reconciles web reviews (IMDB) with the Penn-Treebank-tokenised
#:   sentences of SST-2: HTML line breaks ``<br />`` become spaces (fastai's ``fix_html``), the
#:   clitic "n't" is split off as the Treebank does ("doesn't" -> "does n't", as SST-2 writes
#:   it), and the Treebank's bracket and quote escapes become the characters they stand for.
NORMALIZERS = ("nfkc", "review")
_REVIEW_REPLACEMENTS = ((Regex(r"<br\s*/?>"), " "), ("n't", " n't"), ("-lrb-", "("),
                        ("-rrb-", ")"), ("``", '"'), ("''", '"'))


def _normalizer(lowercase: bool, normalize: str = "nfkc") -> normalizers.Normalizer:
    if normalize not in NORMALIZERS:
        raise ValueError(f"tokenizer normalize must be one of {NORMALIZERS}, got {normalize!r}")
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    if normalize == "review":
        # After lowercasing, so the Treebank escapes (-LRB-, -lrb-) match in either case.
        steps += [normalizers.Replace(pattern, by) for pattern, by in _REVIEW_REPLACEMENTS]
    return normalizers.Sequence(steps)


def normalizer_settings(tokenizer: Tokenizer) -> dict[str, object]:
    """What must agree between a pretrained tokenizer and the data that adopts it: its kind,
    normaliser and pre-tokenizer, as the ``tokenizers`` JSON describes them."""
    spec = json.loads(tokenizer.to_json())
    return {"kind": tokenizer.kind, "normalizer": spec.get("normalizer"),
            "pre_tokenizer": spec.get("pre_tokenizer")}


KINDS = ("word", "bpe", "sp_bpe", "char")


class TokenizerTrainer:
    """How to train a tokenizer: the YAML node ``tokenizer`` of a data config.

    Args:
        kind: ``word``, ``bpe``, ``sp_bpe`` or ``char``.
        lowercase: lowercase before tokenizing.
        min_freq: rarer units (words, merges, characters) are left out.
        vocab_size: the most tokens, specials included (``word``: the most frequent words;
            ``bpe``, ``sp_bpe``: the merge budget; ignored by ``char``). None: no cap.
        normalize: the text normaliser (``NORMALIZERS``), for ``word``, ``bpe`` and ``sp_bpe``.
    """

    def __init__(
        self,
        kind: str = "word",
        lowercase: bool = True,
        min_freq: int = 1,
        vocab_size: int | None = 30_000,
        normalize: str = "nfkc",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"tokenizer kind must be one of {KINDS}, got {kind!r}")
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        if kind in ("bpe", "sp_bpe") and vocab_size is None:
            raise ValueError(f"a {kind} tokenizer needs a vocab_size")
        if normalize not in NORMALIZERS:
            raise ValueError(f"tokenizer normalize must be one of {NORMALIZERS}, got "
                             f"{normalize!r}")
        if kind == "char" and normalize != "nfkc":
            raise ValueError(f"tokenizer normalize={normalize!r} applies to word and bpe "
                             "tokenizers; a char tokenizer keeps the text as it is")
        self.kind, self.lowercase, self.min_freq, self.vocab_size = (
            kind, lowercase, min_freq, vocab_size)
        self.normalize = normalize

    def train(self, texts: Iterable[str]) -> Tokenizer:
        if self.kind == "word":
            return Tokenizer.train_word_level(texts, lowercase=self.lowercase,
                                              min_freq=self.min_freq, max_vocab=self.vocab_size,
                                              normalize=self.normalize)
        if self.kind in ("bpe", "sp_bpe"):
            return Tokenizer.train_bpe(texts, vocab_size=self.vocab_size,
                                       lowercase=self.lowercase, min_freq=self.min_freq,
                                       normalize=self.normalize, byte_level=self.kind == "bpe")
        return Tokenizer.train_char(texts, lowercase=self.lowercase, min_freq=self.min_freq)

    def fingerprint(self) -> str:
        """Identifies the training recipe, for caching trained tokenizers."""
        spec = [self.kind, self.lowercase, self.min_freq, self.vocab_size]
        if self.normalize != "nfkc":  # older caches keep their names
            spec.append(self.normalize)
        return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]
