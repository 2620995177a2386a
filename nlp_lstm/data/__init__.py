"""What every task's data shares: the data module base, tokenizers, batching, downloads, readers
of generic formats and errors. Each task's own sources and data module live in its package
(``nlp_lstm.<task>.data``)."""

from nlp_lstm.data.base import Source, TextDataModule
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer

__all__ = ["DataError", "Source", "TextDataModule", "Tokenizer", "TokenizerTrainer"]
