"""Translation: sentence pairs, an attention seq2seq model on the shared encoder (to come)."""

from nlp_lstm.translation.corpus import SyntheticTranslation
from nlp_lstm.translation.data import Multi30k, ParallelFiles, TranslationDataModule

__all__ = ["Multi30k", "ParallelFiles", "SyntheticTranslation", "TranslationDataModule"]
