"""Translation: sentence pairs to an attention seq2seq model on the shared LSTM encoder.

The names below load on first use, so that the torch-free modules of this package (its
ONNX runtime class, its HTTP endpoint) import without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nlp_lstm.lazy import lazy_attributes

if TYPE_CHECKING:
    from nlp_lstm.translation.corpus import SyntheticTranslation
    from nlp_lstm.translation.data import Multi30k, ParallelFiles, TranslationDataModule
    from nlp_lstm.translation.module import Seq2SeqTranslator
    from nlp_lstm.translation.net import Seq2Seq

_HOMES = {
    "Multi30k": "nlp_lstm.translation.data",
    "ParallelFiles": "nlp_lstm.translation.data",
    "Seq2Seq": "nlp_lstm.translation.net",
    "Seq2SeqTranslator": "nlp_lstm.translation.module",
    "SyntheticTranslation": "nlp_lstm.translation.corpus",
    "TranslationDataModule": "nlp_lstm.translation.data",
}

__all__ = [
    "Multi30k",
    "ParallelFiles",
    "Seq2Seq",
    "Seq2SeqTranslator",
    "SyntheticTranslation",
    "TranslationDataModule",
]

__getattr__ = lazy_attributes(__name__, _HOMES)
