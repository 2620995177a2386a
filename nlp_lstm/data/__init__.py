"""What every task's data shares: the data module bases (``DataModule``, and
``TextDataModule`` with a tokenizer), the loader options they take (``LoaderOptions``),
tokenizers, batching, downloads, readers of generic formats and errors. Each task's own sources
and data module live in its package (``nlp_lstm.<task>.data``).

The names below load on first use, so that the torch-free modules of this package (the
tokenizer, the length guard) import without torch: the ONNX runtime (``nlp_lstm.deploy.runtime``)
uses them and must not pull in torch or Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nlp_lstm.lazy import lazy_attributes

if TYPE_CHECKING:
    from nlp_lstm.data.base import DataModule, Source, TextDataModule
    from nlp_lstm.data.errors import DataError
    from nlp_lstm.data.loader import LoaderOptions
    from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer

_HOMES = {"DataError": "nlp_lstm.data.errors", "DataModule": "nlp_lstm.data.base",
          "LoaderOptions": "nlp_lstm.data.loader",
          "Source": "nlp_lstm.data.base", "TextDataModule": "nlp_lstm.data.base",
          "Tokenizer": "nlp_lstm.data.tokenizer", "TokenizerTrainer": "nlp_lstm.data.tokenizer"}

__all__ = ["DataError", "DataModule", "LoaderOptions", "Source", "TextDataModule", "Tokenizer",
           "TokenizerTrainer"]

__getattr__ = lazy_attributes(__name__, _HOMES)
