"""Data: corpora, tokenizers, batching and LightningDataModules."""

from nlp_lstm.data.corpora import SyntheticSentiment, SyntheticTranslation
from nlp_lstm.data.sentiment import SentimentDataModule
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer
from nlp_lstm.data.translation import TranslationDataModule

__all__ = ["SentimentDataModule", "SyntheticSentiment", "Tokenizer", "TokenizerTrainer"]
__all__ += ["SyntheticTranslation", "TranslationDataModule"]
