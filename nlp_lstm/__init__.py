"""nlp-lstm: LSTM models for NLP, trained with Lightning and configured with Hydra.

``nlp_lstm.load(path)`` reads a checkpoint or an ONNX export (``nlp_lstm.drivers.load``); it is
imported on first use, so ``import nlp_lstm`` stays light and torch-free.
"""

from nlp_lstm.lazy import lazy_attributes

__version__ = "0.3.0"

__getattr__ = lazy_attributes(__name__, {"load": "nlp_lstm.drivers.load"})
__all__ = ["__version__", "load"]
