"""The transfer set of a distillation (``nlp_lstm.sentiment.distill``): the labeled training
examples, then, with ``augment``, unlabeled variants of them (Tang et al. 2019, "Distilling
Task-Specific Knowledge from BERT into Simple Neural Networks": masking and n-gram sampling; no
synonyms here). The variants carry the label ``UNLABELED``, so only the teacher teaches them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from nlp_lstm.data.base import Source
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.tokenizer import TokenizerTrainer
from nlp_lstm.sentiment.data import SentimentDataModule

log = logging.getLogger(__name__)

#: The label of transfer-set examples that only the teacher labels (cross-entropy's default
#: ``ignore_index``, so a plain classifier skips them too).
UNLABELED = -100


class Augmentation:
    """Unlabeled variants of the training examples, on token ids (Tang et al. 2019, without
    part-of-speech-guided synonyms): each token is masked (replaced by ``<unk>``) with
    probability ``p_mask`` or dropped with ``p_drop``; then, with probability ``p_ngram``, only a
    random n-gram of the result is kept, n uniform in 1..``ngram_max``. Variants equal to a
    training example or to an earlier variant are discarded.

    Args:
        copies: how many rounds over the training examples (each adds at most one variant of
            every example).
        p_mask, p_drop, p_ngram: the probabilities above.
        ngram_max: the longest n-gram kept.
        min_length: examples shorter than this many tokens get no variants.
        seed: the variants' own seed, apart from the run's: runs of different seeds share one
            transfer set, and so one cache of the teacher's logits.
    """

    def __init__(self, copies: int = 1, p_mask: float = 0.1, p_drop: float = 0.0,
                 p_ngram: float = 0.25, ngram_max: int = 5, min_length: int = 2,
                 seed: int = 0) -> None:
        if copies < 0:
            raise ValueError(f"augment.copies must be >= 0, got {copies}")
        for name, p in (("p_mask", p_mask), ("p_drop", p_drop), ("p_ngram", p_ngram)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augment.{name} must be a probability in [0, 1], got {p}")
        if p_mask + p_drop > 1.0:
            raise ValueError(f"augment.p_mask + augment.p_drop must be at most 1, got "
                             f"{p_mask} + {p_drop}")
        if ngram_max < 1:
            raise ValueError(f"augment.ngram_max must be >= 1, got {ngram_max}")
        self.copies, self.p_mask, self.p_drop, self.p_ngram = copies, p_mask, p_drop, p_ngram
        self.ngram_max, self.min_length, self.seed = ngram_max, min_length, seed

    def __call__(self, sequences: Sequence[Sequence[int]], mask_id: int) -> list[list[int]]:
        """The new variants of ``sequences``, in a deterministic order."""
        rng = random.Random(self.seed)
        seen = {tuple(seq) for seq in sequences}
        variants = []
        for _ in range(self.copies):
            for seq in sequences:
                if len(seq) < self.min_length:
                    continue
                variant = []
                for token in seq:
                    r = rng.random()
                    if r < self.p_mask:
                        variant.append(mask_id)
                    elif r >= self.p_mask + self.p_drop:
                        variant.append(token)
                if len(variant) > 1 and rng.random() < self.p_ngram:
                    n = rng.randint(1, min(self.ngram_max, len(variant)))
                    start = rng.randrange(len(variant) - n + 1)
                    variant = variant[start : start + n]
                key = tuple(variant)
                if variant and key not in seen:
                    seen.add(key)
                    variants.append(variant)
        return variants


class TransferSetDataModule(SentimentDataModule):
    """A sentiment data module whose training split is a transfer set: the labeled training
    examples, then (with ``augment``) unlabeled variants of them, labeled ``UNLABELED``. The
    other splits, and the tokenizer (trained on the labeled texts only), are those of
    ``SentimentDataModule``.

    Args:
        augment: an ``Augmentation``, or None for the labeled examples alone.
        Others: those of ``TextDataModule``.
    """

    def __init__(
        self,
        *,
        source: Source,
        augment: Augmentation | None = None,
        tokenizer: TokenizerTrainer | None = None,
        root: str | None = None,
        cache_dir: str | None = None,
        trained_tokenizer: str | None = None,
        loader: LoaderOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(source=source, tokenizer=tokenizer, root=root, cache_dir=cache_dir,
                         trained_tokenizer=trained_tokenizer, loader=loader)
        self.augment = augment

    def dataset(self, split: str) -> list[tuple[list[int], int]]:
        if split != "train" or self.augment is None or "train" in self._encoded:
            return super().dataset(split)
        labeled = super().dataset("train")
        variants = self.augment([ids for ids, _ in labeled], mask_id=self.tokenizer.unk_id)
        log.info("transfer set: %d labeled examples and %d unlabeled variants",
                 len(labeled), len(variants))
        self._encoded["train"] = labeled + [(ids, UNLABELED) for ids in variants]
        return self._encoded["train"]
