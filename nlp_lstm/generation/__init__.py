"""Generation: text streams and an LSTM language model on the shared encoder (to come)."""

from nlp_lstm.generation.corpus import SyntheticText
from nlp_lstm.generation.data import LanguageModelDataModule, TextFiles, TinyShakespeare

__all__ = ["LanguageModelDataModule", "SyntheticText", "TextFiles", "TinyShakespeare"]
