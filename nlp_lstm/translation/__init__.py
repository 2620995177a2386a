"""Translation: sentence pairs to an attention seq2seq model on the shared LSTM encoder.

The names below load on first use, so that the torch-free modules of this package (its
ONNX runtime class, its HTTP endpoint) import without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
