"""Corpora the project generates itself, so everything runs with no data at all."""

from nlp_lstm.data.corpora.sentiment import SyntheticSentiment, generate_sentiment

__all__ = ["SyntheticSentiment", "generate_sentiment"]
