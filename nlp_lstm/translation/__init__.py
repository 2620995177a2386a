"""Translation: attention encoder-decoder networks on the shared LSTM encoder."""
