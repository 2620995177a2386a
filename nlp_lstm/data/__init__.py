"""Data: corpora, tokenizers, batching and LightningDataModules."""

from nlp_lstm.data.corpora import SyntheticSentiment
from nlp_lstm.data.sentiment import SentimentDataModule
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer

__all__ = ["SentimentDataModule", "SyntheticSentiment", "Tokenizer", "TokenizerTrainer"]
