"""Layer-normalized LSTM (Ba, Kiros & Hinton 2016, section 3.1 and eq. 20-22).

    [i, f, g, o] = LN_ih(W_ih x_t) + LN_hh(W_hh h_{t-1}) + b_ih + b_hh
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(LN_c(c_t))

Each LN normalizes over its whole last dimension (4H for the gates, H for the cell) and has its
own gain and shift. The input half is normalized for all steps at once; the rest runs step by step
under autograd.

Legend: T time, B batch, I input features, H hidden.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Norm = Callable[[torch.Tensor], torch.Tensor]


def layer_norm_lstm_sequence(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_ih: torch.Tensor,
    w_hh: torch.Tensor, bias: torch.Tensor, norm_ih: Norm, norm_hh: Norm, norm_c: Norm,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the layer-normalized LSTM over all steps.

    Args:
        x: (B, T, I).
        h0, c0: (B, H).
        w_ih: (4H, I); w_hh: (4H, H); bias: (4H,) ``b_ih + b_hh``.
        norm_ih, norm_hh: layer norms over 4H; norm_c: layer norm over H.

    Returns:
        hs, cs: (B, T, H) hidden and cell state after every step.
    """
    gates_x = norm_ih(F.linear(x, w_ih)) + bias  # (B, T, 4H), all steps at once
    h, c = h0.to(gates_x.dtype), c0.to(gates_x.dtype)
    hs, cs = [], []
    for gx in gates_x.unbind(1):  # T x (B, 4H)
        gates = gx + norm_hh(h @ w_hh.t())  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # 4 x (B, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(norm_c(c))
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, dim=1), torch.stack(cs, dim=1)  # (B, T, H) each


def layer_norm(weight: torch.Tensor, bias: torch.Tensor) -> Norm:
    """A layer norm over the last dimension with the given gain and shift."""
    return lambda t: F.layer_norm(t, weight.shape, weight, bias)
