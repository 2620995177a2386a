"""The LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

Gate order i, f, g, o, as in ``torch.nn.LSTM``:

    [i, f, g, o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)

``lstm_step`` is one step of this recurrence given the input half of the gate pre-activation
(which does not depend on h, so a caller may compute it for many steps in one matmul).
``LSTMCell`` applies it to one input per call, as a decoder does, one token at a time. The
encoder runs whole sequences with its own in-place recurrence and hand-written backward
(``autograd.py``), exact against ``nn.LSTM`` like this cell.

Legend: B batch, I input features, H hidden.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lstm_step(
    gates_x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One recurrence step given the precomputed input half of the gates.

    Args:
        gates_x: (B, 4H) ``W_ih x_t + b_ih + b_hh``.
        h, c: (B, H) previous hidden and cell state.
        weight_hh: (4H, H).

    Returns:
        (h_t, c_t), each (B, H).
    """
    gates = torch.addmm(gates_x, h, weight_hh.t())  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)  # 4 x (B, H)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class LSTMCell(nn.Module):
    """A single LSTM cell with the parameter names and shapes of ``torch.nn.LSTMCell``.

    Used step by step by decoders; the encoder runs whole sequences (``autograd.py``).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, I), state (h, c) each (B, H) or None for zeros -> (h, c) each (B, H)."""
        if state is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)
            state = (zeros, zeros)
        gates_x = torch.addmm(self.bias_ih + self.bias_hh, x, self.weight_ih.t())  # (B, 4H)
        return lstm_step(gates_x, state[0], state[1], self.weight_hh)
