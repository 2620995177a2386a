"""Translation: sentence pairs to an attention seq2seq model on the shared LSTM encoder."""

from nlp_lstm.translation.corpus import SyntheticTranslation
from nlp_lstm.translation.data import Multi30k, ParallelFiles, TranslationDataModule
from nlp_lstm.translation.module import Seq2SeqTranslator
from nlp_lstm.translation.net import Seq2Seq

__all__ = ["Multi30k", "ParallelFiles", "Seq2Seq", "Seq2SeqTranslator", "SyntheticTranslation",
           "TranslationDataModule"]
