"""Sentiment analysis: labeled text to a class, with a bidirectional LSTM (or a bag of words),
or a smaller student distilled from one.

The names below load on first use, so that the torch-free modules of this package (its
ONNX runtime class, its HTTP endpoint) import without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nlp_lstm.lazy import lazy_attributes

if TYPE_CHECKING:
    from nlp_lstm.sentiment.corpus import SyntheticSentiment
    from nlp_lstm.sentiment.data import SST2, LabeledTSV, SentimentDataModule
    from nlp_lstm.sentiment.distill import DistilledClassifier
    from nlp_lstm.sentiment.imdb import IMDB
    from nlp_lstm.sentiment.module import BagOfWordsClassifier, SentimentClassifier, TextClassifier
    from nlp_lstm.sentiment.transfer_set import Augmentation, TransferSetDataModule

_HOMES = {
    "Augmentation": "nlp_lstm.sentiment.transfer_set",
    "BagOfWordsClassifier": "nlp_lstm.sentiment.module",
    "DistilledClassifier": "nlp_lstm.sentiment.distill",
    "IMDB": "nlp_lstm.sentiment.imdb",
    "LabeledTSV": "nlp_lstm.sentiment.data",
    "SST2": "nlp_lstm.sentiment.data",
    "SentimentClassifier": "nlp_lstm.sentiment.module",
    "SentimentDataModule": "nlp_lstm.sentiment.data",
    "SyntheticSentiment": "nlp_lstm.sentiment.corpus",
    "TextClassifier": "nlp_lstm.sentiment.module",
    "TransferSetDataModule": "nlp_lstm.sentiment.transfer_set",
}

__all__ = [
    "IMDB",
    "SST2",
    "Augmentation",
    "BagOfWordsClassifier",
    "DistilledClassifier",
    "LabeledTSV",
    "SentimentClassifier",
    "SentimentDataModule",
    "SyntheticSentiment",
    "TextClassifier",
    "TransferSetDataModule",
]

__getattr__ = lazy_attributes(__name__, _HOMES)
