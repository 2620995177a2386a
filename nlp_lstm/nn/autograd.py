"""The LSTM recurrence over a whole packed sequence with a hand-written backward.

Autograd through a step-by-step loop records about ten small ops per step and, in the backward,
one small weight-gradient matmul per step. Here the forward keeps only the gate activations and
the cells in preallocated (N, .) buffers, and the backward

- precomputes every local derivative that does not depend on the incoming gradient for all
  steps at once (a few large elementwise ops),
- runs the reverse recurrence with one matmul and four elementwise ops per step,
- computes the recurrent weight gradient as one (4H, N) x (N, H) matmul at the end.

Rows are packed (``packing.py``): step t owns the next ``batch_sizes[t]`` rows, the sequences
still running, longest first, so padding is never computed. Gate order i, f, g, o, as in
``torch.nn.LSTM``.

Legend: N packed rows (real tokens), B batch, H hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable


def _shifted(first: torch.Tensor, steps: Sequence[torch.Tensor], sizes: Sequence[int]
             ) -> torch.Tensor:
    """Rows of the previous step for every packed row: (N, H) from h0 (B, H) and the steps."""
    shifted = [prev[:n] for prev, n in zip(steps[:-1], sizes[1:], strict=True)]
    return torch.cat([first[: sizes[0]], *shifted])


class _LSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, gates_x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor,
        batch_sizes: list[int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        N, G = gates_x.shape
        H = G // 4
        acts = torch.empty_like(gates_x)  # (N, 4H): sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        hs = gates_x.new_empty(N, H)
        cs = gates_x.new_empty(N, H)
        tanh_c = gates_x.new_empty(batch_sizes[0], H)  # reused by every step
        # (H, 4H). A row-major copy pays for itself only over many steps; for a decoding step
        # (T = 1) copying the weights cost 8x the step (benchmarks/compare generation).
        w_t = w_hh.t().contiguous() if len(batch_sizes) >= 64 else w_hh.t()
        h, c = h0, c0
        for gx, a, h_t, c_t in zip(gates_x.split(batch_sizes), acts.split(batch_sizes),
                                   hs.split(batch_sizes), cs.split(batch_sizes), strict=True):
            n = gx.size(0)  # sequences still running: a prefix of the previous step's rows
            torch.addmm(gx, h[:n], w_t, out=a)  # (n, 4H) pre-activations
            a[:, : 2 * H].sigmoid_()
            a[:, 2 * H : 3 * H].tanh_()
            a[:, 3 * H :].sigmoid_()
            i, f, g, o = a.chunk(4, dim=1)  # 4 x (n, H) views
            torch.mul(f, c[:n], out=c_t).addcmul_(i, g)
            tc_t = torch.tanh(c_t, out=tanh_c[:n])
            h = torch.mul(o, tc_t, out=h_t)  # (n, H)
            c = c_t
        ctx.batch_sizes = batch_sizes
        # tanh(c) is not kept: recomputing it in one op is cheaper than holding (N, H) more.
        ctx.save_for_backward(acts, cs, hs, h0, c0, w_hh)
        return hs, cs

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_hs: torch.Tensor, grad_cs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, None]:
        acts, cs, hs, h0, c0, w_hh = ctx.saved_tensors
        sizes = ctx.batch_sizes
        H = acts.size(1) // 4
        i, f, g, o = acts.chunk(4, dim=1)  # 4 x (N, H) views
        c_prev = _shifted(c0, cs.split(sizes), sizes)  # (N, H)
        # Local derivatives for all steps at once:
        #   dc_t  = dc_{t+1} f_{t+1} + grad_c_t + dh_t * A_t
        #   do_t  = dh_t * Bo_t
        #   [di, df, dg]_t = dc_t * K_t
        tanh_cs = cs.tanh()  # (N, H)
        A = o * (1 - tanh_cs * tanh_cs)  # (N, H)
        Bo = tanh_cs.mul_(o * (1 - o))  # (N, H), in place: tanh_cs is not needed after this
        K = torch.stack(
            [g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], dim=1
        )  # (N, 3, H)
        del c_prev
        dgates = torch.empty_like(acts)  # (N, 4H)
        steps = list(zip(grad_hs.split(sizes), grad_cs.split(sizes), A.split(sizes),
                         Bo.split(sizes), K.split(sizes), f.split(sizes), dgates.split(sizes),
                         strict=True))
        dg_next = dc_next = f_next = None
        for gh, gc, a, bo, k, f_t, dg in reversed(steps):
            n = dg_next.size(0) if dg_next is not None else 0  # rows that ran one step further
            if n == 0:  # the last step
                dh, carry = gh, gc
            elif n == gh.size(0):  # every row continues: fuse the add into the matmul
                dh = torch.addmm(gh, dg_next, w_hh)  # (n, H)
                carry = torch.addcmul(gc, dc_next, f_next)  # dc_t without the part through h_t
            else:  # the last n' - n sequences end at this step
                dh, carry = gh.clone(), gc.clone()  # (n', H)
                dh[:n].addmm_(dg_next, w_hh)
                carry[:n].addcmul_(dc_next, f_next)
            dc = torch.addcmul(carry, dh, a)  # (n', H)
            torch.mul(dc.unsqueeze(1), k, out=dg[:, : 3 * H].unflatten(1, (3, H)))
            torch.mul(dh, bo, out=dg[:, 3 * H :])
            dg_next, dc_next, f_next = dg, dc, f_t
        grad_h0 = dg_next @ w_hh  # (B, H): every sequence runs step 0
        grad_c0 = dc_next * f_next
        h_prev = _shifted(h0, hs.split(sizes), sizes)  # (N, H)
        # One matmul for the recurrent weight gradient of all steps.
        grad_w_hh = dgates.t() @ h_prev  # (4H, H)
        return dgates, grad_h0, grad_c0, grad_w_hh, None


def lstm_sequence(
    gates_x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor,
    batch_sizes: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the LSTM recurrence over packed rows.

    Args:
        gates_x: (N, 4H) ``W_ih x + b_ih + b_hh`` for every packed row; or (T, B, 4H)
            time-major when ``batch_sizes`` is None (every sequence runs T steps).
        h0, c0: (B, H) initial state, in the order of the packed rows.
        w_hh: (4H, H).
        batch_sizes: rows per step, non-increasing, the first equal to B.

    Returns:
        hs, cs: hidden and cell state after every step, shaped like ``gates_x`` but H wide.
    """
    shape = gates_x.shape[:-1]
    if batch_sizes is None:
        batch_sizes = [gates_x.size(1)] * gates_x.size(0)
        gates_x = gates_x.reshape(-1, gates_x.size(-1))  # (T*B, 4H)
    dtype = gates_x.dtype  # the autocast dtype if the input matmul ran under autocast
    h0, c0, w_hh = h0.to(dtype), c0.to(dtype), w_hh.to(dtype)
    with torch.autocast(gates_x.device.type, enabled=False):
        hs, cs = _LSTMSequence.apply(gates_x.contiguous(), h0.contiguous(), c0.contiguous(),
                                     w_hh.contiguous(), list(batch_sizes))
    return hs.view(*shape, -1), cs.view(*shape, -1)
