"""Sentiment analysis: labeled text to a class, with a bidirectional LSTM (or a bag of words)."""

from nlp_lstm.sentiment.corpus import SyntheticSentiment
from nlp_lstm.sentiment.data import SST2, LabeledTSV, SentimentDataModule
from nlp_lstm.sentiment.module import BagOfWordsClassifier, SentimentClassifier, TextClassifier

__all__ = ["SST2", "BagOfWordsClassifier", "LabeledTSV", "SentimentClassifier",
           "SentimentDataModule", "SyntheticSentiment", "TextClassifier"]
