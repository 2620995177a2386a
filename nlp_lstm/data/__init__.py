"""Data: corpora, tokenizers, batching and LightningDataModules."""

from nlp_lstm.data.corpora import SyntheticSentiment, SyntheticText, SyntheticTranslation
from nlp_lstm.data.language_model import LanguageModelDataModule
from nlp_lstm.data.sentiment import SentimentDataModule
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer
from nlp_lstm.data.translation import TranslationDataModule

__all__ = [
    "LanguageModelDataModule",
    "SentimentDataModule",
    "SyntheticSentiment",
    "SyntheticText",
    "SyntheticTranslation",
    "Tokenizer",
    "TokenizerTrainer",
    "TranslationDataModule",
]
