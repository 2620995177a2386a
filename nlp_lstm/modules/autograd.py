"""The LSTM recurrence over a whole sequence with a hand-written backward.

Autograd through a step-by-step loop records about ten small ops per step and, in the backward,
one small weight-gradient matmul per step. Here the forward keeps only the gate activations and
the cells in preallocated (T, B, .) buffers, and the backward

- precomputes every local derivative that does not depend on the incoming gradient for all
  steps at once (a few large elementwise ops),
- runs the reverse recurrence with one matmul and four elementwise ops per step,
- computes the recurrent weight gradient as one (4H, T*B) x (T*B, H) matmul at the end.

Gate order i, f, g, o, as in ``torch.nn.LSTM``. The recurrence runs over all T steps: padding is
the caller's business (it takes the states at each sequence's last real step, so padded steps,
which come after it, receive exactly zero gradient).

Legend: T time, B batch, H hidden.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable


class _LSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, gates_x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, G = gates_x.shape
        H = G // 4
        acts = torch.empty_like(gates_x)  # (T, B, 4H): sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        hs = gates_x.new_empty(T, B, H)
        cs = gates_x.new_empty(T, B, H)
        tanh_cs = gates_x.new_empty(T, B, H)
        w_t = w_hh.t()  # (H, 4H)
        h, c = h0, c0
        for t, (gx, a) in enumerate(zip(gates_x.unbind(0), acts.unbind(0), strict=True)):
            torch.addmm(gx, h, w_t, out=a)  # (B, 4H) pre-activations
            a[:, : 2 * H].sigmoid_()
            a[:, 2 * H : 3 * H].tanh_()
            a[:, 3 * H :].sigmoid_()
            i, f, g, o = a.chunk(4, dim=1)  # 4 x (B, H) views
            c_t = torch.mul(f, c, out=cs[t]).addcmul_(i, g)  # (B, H)
            torch.tanh(c_t, out=tanh_cs[t])
            h = torch.mul(o, tanh_cs[t], out=hs[t])  # (B, H)
            c = c_t
        ctx.save_for_backward(acts, cs, tanh_cs, hs, h0, c0, w_hh)
        return hs, cs

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_hs: torch.Tensor, grad_cs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        acts, cs, tanh_cs, hs, h0, c0, w_hh = ctx.saved_tensors
        T, B, G = acts.shape
        H = G // 4
        i, f, g, o = acts.chunk(4, dim=2)  # 4 x (T, B, H) views
        c_prev = torch.cat([c0.unsqueeze(0), cs[:-1]])  # (T, B, H)
        # Local derivatives for all steps at once:
        #   dc_t  = dc_{t+1} f_{t+1} + grad_c_t + dh_t * A_t
        #   do_t  = dh_t * Bo_t
        #   [di, df, dg]_t = dc_t * K_t
        A = o * (1 - tanh_cs * tanh_cs)  # (T, B, H)
        Bo = tanh_cs * o * (1 - o)  # (T, B, H)
        K = torch.stack(
            [g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], dim=2
        )  # (T, B, 3, H)
        dgates = torch.empty_like(acts)  # (T, B, 4H)
        dgates_icg = dgates[:, :, : 3 * H].unflatten(2, (3, H))  # (T, B, 3, H) view
        dgates_o = dgates[:, :, 3 * H :]  # (T, B, H) view
        dh = grad_hs[T - 1]
        carry = grad_cs[T - 1]  # the part of dc_t that does not go through h_t
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                dh = torch.addmm(grad_hs[t], dgates[t + 1], w_hh)  # (B, H)
            dc = torch.addcmul(carry, dh, A[t])  # (B, H)
            torch.mul(dc.unsqueeze(1), K[t], out=dgates_icg[t])
            torch.mul(dh, Bo[t], out=dgates_o[t])
            carry = torch.addcmul(grad_cs[t - 1], dc, f[t]) if t > 0 else dc * f[0]
        grad_h0 = dgates[0] @ w_hh  # (B, H)
        h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]])  # (T, B, H)
        # One matmul for the recurrent weight gradient of all steps.
        grad_w_hh = dgates.view(T * B, G).t() @ h_prev.view(T * B, H)  # (4H, H)
        return dgates, grad_h0, carry, grad_w_hh


def lstm_sequence(
    gates_x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the LSTM recurrence over all steps.

    Args:
        gates_x: (T, B, 4H) ``W_ih x_t + b_ih + b_hh`` for every step, time-major.
        h0, c0: (B, H) initial state.
        w_hh: (4H, H).

    Returns:
        hs, cs: (T, B, H) hidden and cell state after every step.
    """
    dtype = gates_x.dtype  # the autocast dtype if the input matmul ran under autocast
    h0, c0, w_hh = h0.to(dtype), c0.to(dtype), w_hh.to(dtype)
    with torch.autocast(gates_x.device.type, enabled=False):
        return _LSTMSequence.apply(gates_x.contiguous(), h0.contiguous(), c0.contiguous(),
                                   w_hh.contiguous())
