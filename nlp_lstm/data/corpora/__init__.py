"""Corpora the project generates itself, so everything runs with no data at all."""

from nlp_lstm.data.corpora.sentiment import SyntheticSentiment, generate_sentiment
from nlp_lstm.data.corpora.text import SyntheticText, generate_stories
from nlp_lstm.data.corpora.translation import SyntheticTranslation, generate_translation

__all__ = [
    "SyntheticSentiment",
    "SyntheticText",
    "SyntheticTranslation",
    "generate_sentiment",
    "generate_stories",
    "generate_translation",
]
