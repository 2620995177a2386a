"""Generation: text streams and an LSTM language model on the shared encoder (to come)."""

from nlp_lstm.generation.corpus import SyntheticText
from nlp_lstm.generation.data import GenerationDataModule, TextFiles, TinyShakespeare

__all__ = ["GenerationDataModule", "SyntheticText", "TextFiles", "TinyShakespeare"]
