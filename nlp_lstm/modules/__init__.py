"""Networks: torch only, no Lightning, no Hydra."""

from nlp_lstm.modules.autograd import lstm_sequence
from nlp_lstm.modules.cell import LSTMCell, lstm_step
from nlp_lstm.modules.encoder import LSTMEncoder, reverse_padded
from nlp_lstm.modules.gru import gru_step
from nlp_lstm.modules.masking import lengths_to_mask
from nlp_lstm.modules.pooling import Pooling

__all__ = [
    "LSTMCell",
    "LSTMEncoder",
    "Pooling",
    "gru_step",
    "lengths_to_mask",
    "lstm_sequence",
    "lstm_step",
    "reverse_padded",
]
