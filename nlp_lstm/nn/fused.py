"""PyTorch's fused RNN kernels (cuDNN on GPU, oneDNN or native on CPU) on an encoder's parameters.

Three ways to run a padded batch, all exact against ``nn.LSTM``/``nn.GRU`` on a packed batch:

- ``fused_full``: every sequence has length T; one kernel call for all layers.
- ``fused_packed``: pack the batch. cuDNN runs packed batches fast; on CPU the kernel falls back
  to a slow per-step path.
- ``fused_padded_layer``: one direction of one layer on the *padded* batch (fast on CPU), with an
  extra input feature that is 1 at padded steps and 0 at real ones. Its weight column adds
  -PAD_GATE to the input gate and +PAD_GATE to the forget and output gates (LSTM), or +PAD_GATE
  to the update gate (GRU). At a padded step the gates then saturate to exactly 1 or 0, so

  - the LSTM cell and the GRU state pass through unchanged: the kernel's final c (GRU: h) is the
    one at each sequence's last real step;
  - every gate derivative there is exactly zero: padded steps send no gradient to the weights,
    to the inputs or to the hidden state, and the cell gradient passes through unchanged.

  Padded steps come after the real ones, so real outputs never see them; the reverse direction
  gets each sequence reversed within its length. The LSTM hidden state at padded steps is not
  frozen (h = tanh(c) there), so the caller takes h at the last real step from the outputs.
  Padded inputs must be finite.

Under CPU autocast, PyTorch hands the LSTM to oneDNN in the autocast dtype, and oneDNN has no
bfloat16 (or float16) LSTM on CPUs without those instructions (AVX2-only machines): it raises
"could not create a primitive descriptor". ``cpu_autocast_supported`` finds out once per process.

Legend: B batch, T time, F features of a layer's input, H hidden, L layers, D directions.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

# Saturates sigmoid to exactly 0 or 1 in float64, float32, bfloat16 and float16 alike, far beyond
# any real pre-activation.
PAD_GATE = 1e4

log = logging.getLogger(__name__)


def _kernel(cell: str):  # torch._VF builtins have no public type
    return torch._VF.lstm if cell == "lstm" else torch._VF.gru


@functools.cache
def cpu_autocast_supported(cell: str, dtype: torch.dtype) -> bool:
    """Whether the fused CPU kernel of ``cell`` runs, forward and backward, under
    ``torch.autocast("cpu", dtype=dtype)`` on this machine. One tiny call per process and
    (cell, dtype); logs one line when the answer is no. Asked first wherever the encoder runs
    (validation included), so it turns gradients on for its own backward."""
    G = 4 if cell == "lstm" else 3
    try:
        with torch.inference_mode(False), torch.enable_grad():
            weights = [torch.zeros(G, 1, requires_grad=True) for _ in range(2)] + [
                torch.zeros(G, requires_grad=True) for _ in range(2)]  # w_ih, w_hh; b_ih, b_hh
            x = torch.zeros(1, 1, 1)  # (B, T, F)
            h = torch.zeros(1, 1, 1)  # (1, B, H)
            with torch.autocast("cpu", dtype=dtype):
                for train in (False, True):  # inference and training primitives
                    out = _kernel(cell)(x, (h, h) if cell == "lstm" else h, weights, True, 1,
                                        0.0, train, False, True)[0]
            out.float().sum().backward()
    except RuntimeError as e:
        log.info("no %s %s kernel on this CPU (%s): under autocast the encoder's fused path "
                 "runs in the parameters' dtype", dtype, cell.upper(), str(e).split(".")[0])
        return False
    return True


def fused_full(
    cell: str, x: torch.Tensor, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    weights: list[torch.Tensor], num_layers: int, dropout: float, train: bool, bidirectional: bool,
) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """x (B, T, F), state (L*D, B, H) or a pair of them -> output (B, T, D*H), final state."""
    result = _kernel(cell)(x, state, weights, True, num_layers, dropout, train, bidirectional,
                           True)  # batch_first
    if cell == "lstm":
        return result[0], (result[1], result[2])
    return result[0], result[1]


def fused_packed(
    cell: str, x: torch.Tensor, lengths: torch.Tensor,
    state: torch.Tensor | tuple[torch.Tensor, torch.Tensor], weights: list[torch.Tensor],
    num_layers: int, dropout: float, train: bool, bidirectional: bool,
) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """As ``fused_full`` for unequal lengths (B,), through a ``PackedSequence``."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    states = state if isinstance(state, tuple) else (state,)
    sorted_states = tuple(s.index_select(1, packed.sorted_indices) for s in states)  # (L*D, B, H)
    hx = sorted_states if cell == "lstm" else sorted_states[0]
    result = _kernel(cell)(packed.data, packed.batch_sizes, hx, weights, True, num_layers,
                           dropout, train, bidirectional)
    output, _ = pad_packed_sequence(
        PackedSequence(result[0], packed.batch_sizes, packed.sorted_indices,
                       packed.unsorted_indices),
        batch_first=True, total_length=x.size(1),
    )  # (B, T, D*H)
    finals = [s.index_select(1, packed.unsorted_indices) for s in result[1:]]  # (L*D, B, H)
    return output, (finals[0], finals[1]) if cell == "lstm" else finals[0]


def pad_column(cell: str, hidden_size: int, like: torch.Tensor) -> torch.Tensor:
    """The weight column of the padding feature: (G*H, 1), G = 4 (LSTM) or 3 (GRU)."""
    H = hidden_size
    column = like.new_zeros(4 * H if cell == "lstm" else 3 * H, 1)
    if cell == "lstm":
        column[:H] = -PAD_GATE  # input gate -> 0: nothing written
        column[H : 2 * H] = PAD_GATE  # forget gate -> 1: the cell is kept
        column[3 * H :] = PAD_GATE  # output gate -> 1: derivative exactly 0
    else:
        column[H : 2 * H] = PAD_GATE  # update gate -> 1: h is kept
    return column


def fused_padded_layer(
    cell: str, x: torch.Tensor, weights: list[torch.Tensor],
    state: torch.Tensor | tuple[torch.Tensor, torch.Tensor], column: torch.Tensor, train: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One direction of one layer on a right-padded batch.

    Args:
        x: (B, T, F + 1), the last feature 1.0 at padded steps and 0.0 at real ones.
        weights: [w_ih (G*H, F), w_hh, b_ih, b_hh] of this layer and direction.
        state: (1, B, H) or a pair of them, applied at step 0.
        column: ``pad_column`` for this cell.
        train: the module's training flag (the kernel keeps its workspace for the backward).

    Returns:
        output (B, T, H), exact up to each sequence's last real step (garbage after), and for
        the LSTM the cell (B, H) at each sequence's last real step (None for the GRU).
    """
    w_ih, *rest = weights
    w_ih = torch.cat([w_ih, column.to(w_ih.dtype)], dim=1)  # (G*H, F + 1)
    result = _kernel(cell)(x, state, [w_ih, *rest], True, 1, 0.0, train, False, True)
    return result[0], result[2][0] if cell == "lstm" else None
