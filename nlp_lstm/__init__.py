"""nlp-lstm: LSTM models for NLP, trained with Lightning and configured with Hydra."""

__version__ = "0.2.0"
