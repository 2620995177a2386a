"""The GRU recurrence (Cho et al. 2014) with the equations and gate order of ``torch.nn.GRU``.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

``b_hn`` sits inside the reset gate, so unlike the LSTM the recurrent bias cannot be folded into
the input half of the gates. Optional layer norms (Ba et al. 2016) act on ``W_ih x`` and ``W_hh h``
before their biases.

Legend: N packed rows (real tokens, see ``packing.py``), B batch, I input features, H hidden.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Norm = Callable[[torch.Tensor], torch.Tensor]


def gru_step(
    gates_x: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor,
    norm_hh: Norm | None = None,
) -> torch.Tensor:
    """One GRU step given the precomputed input half of the gates.

    Args:
        gates_x: (B, 3H) ``W_ih x_t + b_ih``.
        h: (B, H) previous hidden state.
        w_hh: (3H, H); b_hh: (3H,).
        norm_hh: optional layer norm applied to ``W_hh h``.

    Returns:
        (B, H) the next hidden state.
    """
    gates_h = h @ w_hh.t()  # (B, 3H)
    if norm_hh is not None:
        gates_h = norm_hh(gates_h)
    gates_h = gates_h + b_hh
    x_r, x_z, x_n = gates_x.chunk(3, dim=1)  # 3 x (B, H)
    h_r, h_z, h_n = gates_h.chunk(3, dim=1)  # 3 x (B, H)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return torch.lerp(n, h, z)  # (1 - z) * n + z * h


def gru_sequence(
    x: torch.Tensor, h0: torch.Tensor, batch_sizes: list[int], w_ih: torch.Tensor,
    w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor, norm_ih: Norm | None = None,
    norm_hh: Norm | None = None,
) -> torch.Tensor:
    """Run the GRU over packed rows x (N, I) from h0 (B, H), sorted; returns hs (N, H)."""
    gates_x = F.linear(x, w_ih)  # (N, 3H), all steps in one matmul
    if norm_ih is not None:
        gates_x = norm_ih(gates_x)
    gates_x = gates_x + b_ih
    h = h0.to(gates_x.dtype)
    outputs = []
    for gx in gates_x.split(batch_sizes):  # T x (n, 3H), n sequences still running
        h = gru_step(gx, h[: gx.size(0)], w_hh, b_hh, norm_hh)
        outputs.append(h)
    return torch.cat(outputs)  # (N, H)
