"""Text generation: an LSTM language model with attention over its past."""
