"""A long sequence read in chunks, the recurrent state carried from each chunk into the next
(BPT3C, "backpropagation through time for text classification", Howard & Ruder 2018): a whole
document goes through the encoder chunk by chunk, and the outputs of every step are kept for
pooling over the whole document.

Exact: outputs and final states equal one pass of ``LSTMEncoder`` over the whole batch. Layers
run one after another (a bidirectional layer's input at step t depends on the whole layer
below); within a layer, the forward direction reads the chunks left to right, and the backward
direction reads every sequence reversed within its own length, chunk by chunk, so it starts at
each sequence's last real token as a single pass does. A chunk runs only the sequences still
going at its first step, so padding is never computed.

The recurrences are the encoder's own loop (``LSTMEncoder.run_direction``) whatever its
``impl``. ``detach=True`` cuts the gradient at chunk boundaries (ULMFiT's truncated
backpropagation): the values stay exact, each chunk's gradient stops at its first step. With
``weight_drop``, each chunk draws its own DropConnect mask in training.

Legend: B batch, T time, F input features, H hidden, L layers, D directions, C chunk length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nlp_lstm.nn.encoder import LSTMEncoder, State, reverse_padded
from nlp_lstm.nn.packing import Packing


def check_chunk_length(chunk_length: object) -> None:
    """A ValueError unless ``chunk_length`` is a positive integer."""
    if isinstance(chunk_length, bool) or not isinstance(chunk_length, int) or chunk_length < 1:
        raise ValueError(f"chunk_length must be a positive integer, got {chunk_length!r}")


def _direction_in_chunks(
    encoder: LSTMEncoder, k: int, x: torch.Tensor, lengths: torch.Tensor, chunk_length: int,
    h: torch.Tensor, c: torch.Tensor | None, detach: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The recurrence of layer-direction k over x (B, T, F), in order, chunk by chunk, from h, c
    (B, H). Returns outputs (B, T, H), zero after each length, and the states (B, H) at each
    sequence's last real step."""
    B, T, _ = x.shape
    chunks = []
    for start in range(0, T, chunk_length):
        active = (lengths > start).nonzero().squeeze(1)  # (B',) sequences still going
        n = (lengths.index_select(0, active) - start).clamp(max=chunk_length)  # (B',)
        steps = int(n.max())
        x_k = x[:, start : start + steps].index_select(0, active)  # (B', C, F)
        packing = Packing(n, active.numel(), steps, x.device)
        h_in, c_in = (h.detach(), None if c is None else c.detach()) if detach else (h, c)
        h_k = packing.sort(h_in.index_select(0, active))  # (B', H) in the packed rows' order
        c_k = None if c_in is None else packing.sort(c_in.index_select(0, active))
        hs, cs = encoder.run_direction(k, packing.pack(x_k), packing.batch_sizes, h_k, c_k)
        out = x.new_zeros(B, steps, hs.size(1))  # (B, C, H)
        chunks.append(out.index_copy(0, active, packing.unpack(hs)))
        h = h.index_copy(0, active, packing.last(hs))  # (B, H): finished sequences keep theirs
        if cs is not None:
            c = c.index_copy(0, active, packing.last(cs))
    return torch.cat(chunks, dim=1), h, c  # (B, T, H)


def encode_in_chunks(
    encoder: LSTMEncoder,
    x: torch.Tensor,
    lengths: torch.Tensor | None,
    chunk_length: int,
    state: State | None = None,
    detach: bool = False,
) -> tuple[torch.Tensor, State]:
    """What ``encoder(x, lengths, state)`` returns, read ``chunk_length`` steps at a time.

    Args:
        encoder: an ``LSTMEncoder`` (LSTM or GRU, any layers and directions).
        x: (B, T, F).
        lengths: (B,) in [1, T]; None means all T.
        chunk_length: C, the steps of one chunk.
        state: the initial state, as the encoder takes it ((h_0, c_0) or h_0, (L*D, B, H)).
        detach: cut the gradient at chunk boundaries.

    Returns:
        output (B, T, D*H), zero after each sequence's length, and the final state ((h_n, c_n)
        for the LSTM, h_n for the GRU, (L*D, B, H)) at each sequence's last real token.
    """
    check_chunk_length(chunk_length)
    B, T = x.size(0), x.size(1)
    lengths = encoder._check_inputs(x, lengths, state)  # None: every sequence is T long
    if lengths is None:
        lengths = x.new_full((B,), T, dtype=torch.int64)  # (B,)
    lstm = encoder.cell == "lstm"
    if state is None:
        zeros = x.new_zeros(encoder.num_layers * encoder.num_directions, B, encoder.hidden_size)
        h0, c0 = zeros, (zeros if lstm else None)
    else:
        h0, c0 = (state[0], state[1]) if lstm else (state, None)
    h_n, c_n = [], []
    layer_input = x  # (B, T, F), then (B, T, D*H)
    for layer in range(encoder.num_layers):
        outputs = []
        for direction in range(encoder.num_directions):
            k = layer * encoder.num_directions + direction
            inp = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
            out, h, c = _direction_in_chunks(encoder, k, inp, lengths, chunk_length, h0[k],
                                             None if c0 is None else c0[k], detach)
            outputs.append(out if direction == 0 else reverse_padded(out, lengths))  # (B, T, H)
            h_n.append(h)
            if c is not None:
                c_n.append(c)
        layer_input = torch.cat(outputs, dim=2)  # (B, T, D*H)
        if layer < encoder.num_layers - 1 and encoder.dropout > 0:
            layer_input = F.dropout(layer_input, encoder.dropout, encoder.training)
    if lstm:
        return layer_input, (torch.stack(h_n), torch.stack(c_n))  # (L*D, B, H) each
    return layer_input, torch.stack(h_n)  # (L*D, B, H)
