"""Generation: text streams and an LSTM language model (with attention over its past) on the
shared encoder.

The names below load on first use, so that the torch-free modules of this package (its
ONNX runtime class, its HTTP endpoint) import without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nlp_lstm.lazy import lazy_attributes

if TYPE_CHECKING:
    from nlp_lstm.generation.corpus import SyntheticText
    from nlp_lstm.generation.data import (
        GenerationDataModule,
        IMDBReviews,
        LabeledText,
        TextFiles,
        TinyShakespeare,
    )
    from nlp_lstm.generation.module import LanguageModel
    from nlp_lstm.generation.net import LanguageModelNet, LMState

_HOMES = {
    "GenerationDataModule": "nlp_lstm.generation.data",
    "IMDBReviews": "nlp_lstm.generation.data",
    "LabeledText": "nlp_lstm.generation.data",
    "LMState": "nlp_lstm.generation.net",
    "LanguageModel": "nlp_lstm.generation.module",
    "LanguageModelNet": "nlp_lstm.generation.net",
    "SyntheticText": "nlp_lstm.generation.corpus",
    "TextFiles": "nlp_lstm.generation.data",
    "TinyShakespeare": "nlp_lstm.generation.data",
}

__all__ = [
    "GenerationDataModule",
    "IMDBReviews",
    "LMState",
    "LabeledText",
    "LanguageModel",
    "LanguageModelNet",
    "SyntheticText",
    "TextFiles",
    "TinyShakespeare",
]

__getattr__ = lazy_attributes(__name__, _HOMES)
