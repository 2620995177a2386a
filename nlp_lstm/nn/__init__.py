"""Networks, torch only (no Lightning, no Hydra): encoders (LSTM/GRU, Transformer), recurrences,
cell, pooling, masking, attention, decoder, decoding."""

from nlp_lstm.nn.attention import Attention
from nlp_lstm.nn.autograd import lstm_sequence
from nlp_lstm.nn.bridge import Bridge
from nlp_lstm.nn.cell import LSTMCell, lstm_step
from nlp_lstm.nn.decoder import AttentionDecoder, DecoderState, Memory
from nlp_lstm.nn.decoding import Hypothesis, beam_search, greedy
from nlp_lstm.nn.encoder import (
    ENCODER_KINDS,
    LSTMEncoder,
    at_last_step,
    build_encoder,
    reverse_padded,
)
from nlp_lstm.nn.gru import gru_step
from nlp_lstm.nn.masking import lengths_to_mask
from nlp_lstm.nn.pooling import Pooling
from nlp_lstm.nn.transformer import KVCache, TransformerEncoder

__all__ = [
    "ENCODER_KINDS",
    "Attention",
    "AttentionDecoder",
    "Bridge",
    "DecoderState",
    "Hypothesis",
    "KVCache",
    "LSTMCell",
    "LSTMEncoder",
    "Memory",
    "Pooling",
    "TransformerEncoder",
    "at_last_step",
    "beam_search",
    "build_encoder",
    "greedy",
    "gru_step",
    "lengths_to_mask",
    "lstm_sequence",
    "lstm_step",
    "reverse_padded",
]
