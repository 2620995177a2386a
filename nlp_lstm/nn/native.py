"""An ``LSTMEncoder``'s weights in ``torch.nn.LSTM`` (``nn.GRU``), behind the encoder's own
call: ``forward(x, lengths, state) -> (output, state)``.

Our encoder is exact against ``nn.LSTM`` on packed batches (tests/test_encoder.py), so this is
the same function in a form that other tools know: the ONNX exporter turns ``nn.LSTM`` over a
packed batch into native ``LSTM`` ops with ``sequence_lens``, and ``torch.ao`` dynamic
quantization swaps ``nn.LSTM`` for its int8 version. Our loop and fused paths are neither.

Legend: B batch, T time, I input features, H hidden, L layers, D directions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlp_lstm.nn.encoder import LSTMEncoder, State


class NativeEncoder(nn.Module):
    """``encoder``'s function on a ``torch.nn.LSTM`` (or ``nn.GRU``) holding copies of its
    weights, for inference. Layer norm has no native counterpart: a ValueError; weight drop
    and dropout are training-only and vanish."""

    def __init__(self, encoder: LSTMEncoder) -> None:
        super().__init__()
        if encoder.layer_norm:
            raise ValueError("an encoder with layer_norm=True has no torch.nn.LSTM equivalent "
                             "(the native LSTM op has no layer norm); expected layer_norm=False")
        self.cell = encoder.cell
        self.num_layers = encoder.num_layers
        self.num_directions = encoder.num_directions
        self.hidden_size = encoder.hidden_size
        self.output_size = encoder.output_size
        rnn = nn.LSTM if encoder.cell == "lstm" else nn.GRU
        self.rnn = rnn(encoder.input_size, encoder.hidden_size, encoder.num_layers,
                       batch_first=True, bidirectional=encoder.bidirectional)
        weights = {name: p for name, p in encoder.state_dict().items()
                   if not name.startswith("ln_")}
        self.rnn.load_state_dict(weights)  # same names, shapes and gate order
        self.rnn.to(encoder.weight_ih_l0.dtype)
        self.eval()

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """x (B, T, I), lengths (B,) in [1, T] or None for all T, state as the encoder's ->
        output (B, T, D*H), zero after each length, and the final state, (L*D, B, H) each."""
        hx = tuple(state) if isinstance(state, (tuple, list)) else state
        if lengths is None:
            return self.rnn(x, hx)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, final = self.rnn(packed, hx)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.size(1))
        if torch.jit.is_tracing():
            # The TorchScript ONNX exporter (torch 2.13) fails on a single-layer packed LSTM
            # whose padded output the graph never reads (sentiment's "last" pooling). A
            # dependence of value zero keeps the output in the graph.
            zero = 0.0 * output.sum()
            final = tuple(f + zero for f in final) if isinstance(final, tuple) else final + zero
        return output, final  # (B, T, D*H), (L*D, B, H) each


def native_encoders(module: nn.Module) -> nn.Module:
    """``module`` with every ``LSTMEncoder`` inside it replaced by its ``NativeEncoder``, in
    place; returns it."""
    for name, child in module.named_children():
        if isinstance(child, LSTMEncoder):
            setattr(module, name, NativeEncoder(child))
        else:
            native_encoders(child)
    return module
