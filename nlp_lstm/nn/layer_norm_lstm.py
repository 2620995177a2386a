"""Layer-normalized LSTM (Ba, Kiros & Hinton 2016, section 3.1 and eq. 20-22).

    [i, f, g, o] = LN_ih(W_ih x_t) + LN_hh(W_hh h_{t-1}) + b_ih + b_hh
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(LN_c(c_t))

Each LN normalizes over its whole last dimension (4H for the gates, H for the cell) and has its
own gain and shift. The input half is normalized for all steps at once; the rest runs step by step
under autograd.

Legend: N packed rows (real tokens, see ``packing.py``), B batch, I input features, H hidden.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Norm = Callable[[torch.Tensor], torch.Tensor]


def layer_norm_lstm_sequence(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, batch_sizes: list[int],
    w_ih: torch.Tensor,
    w_hh: torch.Tensor, bias: torch.Tensor, norm_ih: Norm, norm_hh: Norm, norm_c: Norm,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the layer-normalized LSTM over packed rows.

    Args:
        x: (N, I) packed rows.
        h0, c0: (B, H), in the order of the packed rows.
        batch_sizes: rows per step.
        w_ih: (4H, I); w_hh: (4H, H); bias: (4H,) ``b_ih + b_hh``.
        norm_ih, norm_hh: layer norms over 4H; norm_c: layer norm over H.

    Returns:
        hs, cs: (N, H) hidden and cell state after every step.
    """
    gates_x = norm_ih(F.linear(x, w_ih)) + bias  # (N, 4H), all steps at once
    h, c = h0.to(gates_x.dtype), c0.to(gates_x.dtype)
    hs, cs = [], []
    for gx in gates_x.split(batch_sizes):  # T x (n, 4H), n sequences still running
        n = gx.size(0)
        gates = gx + norm_hh(h[:n] @ w_hh.t())  # (n, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # 4 x (n, H)
        c = torch.sigmoid(f) * c[:n] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(norm_c(c))
        hs.append(h)
        cs.append(c)
    return torch.cat(hs), torch.cat(cs)  # (N, H) each


def layer_norm(weight: torch.Tensor, bias: torch.Tensor) -> Norm:
    """A layer norm over the last dimension with the given gain and shift."""
    return lambda t: F.layer_norm(t, weight.shape, weight, bias)
