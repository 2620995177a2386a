"""Data: corpora, tokenizers, batching and LightningDataModules."""

from nlp_lstm.data.corpora import SyntheticSentiment, SyntheticText
from nlp_lstm.data.language_model import LanguageModelDataModule
from nlp_lstm.data.sentiment import SentimentDataModule
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer

__all__ = ["LanguageModelDataModule", "SentimentDataModule", "SyntheticSentiment",
           "SyntheticText", "Tokenizer", "TokenizerTrainer"]
