"""Generation: text streams and an LSTM language model (with attention over its past) on the
shared encoder."""

from nlp_lstm.generation.corpus import SyntheticText
from nlp_lstm.generation.data import GenerationDataModule, TextFiles, TinyShakespeare
from nlp_lstm.generation.module import LanguageModel
from nlp_lstm.generation.net import LanguageModelNet, LMState

__all__ = ["GenerationDataModule", "LMState", "LanguageModel", "LanguageModelNet",
           "SyntheticText", "TextFiles", "TinyShakespeare"]
