"""Sentiment analysis: labeled text to a class, with a bidirectional LSTM (or a bag of words),
or a smaller student distilled from one."""

from nlp_lstm.sentiment.corpus import SyntheticSentiment
from nlp_lstm.sentiment.data import SST2, LabeledTSV, SentimentDataModule
from nlp_lstm.sentiment.distill import Augmentation, DistilledClassifier, TransferSetDataModule
from nlp_lstm.sentiment.module import BagOfWordsClassifier, SentimentClassifier, TextClassifier

__all__ = ["SST2", "Augmentation", "BagOfWordsClassifier", "DistilledClassifier", "LabeledTSV",
           "SentimentClassifier", "SentimentDataModule", "SyntheticSentiment", "TextClassifier",
           "TransferSetDataModule"]
