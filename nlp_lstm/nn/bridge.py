"""The bridge: a decoder's initial LSTM state from an encoder's final state.

- ``none``: zeros; the decoder learns everything about the source through attention.
- ``copy``: the encoder's final states themselves, a layer's directions side by side (h_0 of
  decoder layer l = [h_n^{l,fwd}; h_n^{l,bwd}]), OpenNMT-py's default (no bridge); needs as
  many decoder layers as encoder layers and H_dec = D * H_enc. No parameters.
- ``project``: one learned linear map from the final states of every encoder layer and
  direction, concatenated, to the states of every decoder layer (OpenNMT-py's bridge), so the
  encoder and the decoder may differ in depth, width and directions:

      h_0 = tanh(W_h [h_n^1; ...; h_n^{L_enc*D}] + b_h)   bounded, like every LSTM output
      c_0 =      W_c [c_n^1; ...; c_n^{L_enc*D}] + b_c    unbounded, like every LSTM cell

  A GRU encoder has no cell, so c_0 is then a second projection of its h_n.

Legend: B batch, L layers, D directions, H hidden.
"""

from __future__ import annotations

import torch
from torch import nn

BRIDGES = ("none", "copy", "project")


class Bridge(nn.Module):
    """Maps the encoder's final state, (h_n, c_n) or a GRU's h_n, each (L_enc*D, B, H_enc), to
    the decoder's (h_0, c_0), each (L_dec, B, H_dec).

    Args:
        kind: ``"none"``, ``"copy"`` or ``"project"``.
        encoder_states: L_enc*D.
        encoder_hidden: H_enc.
        decoder_layers: L_dec.
        decoder_hidden: H_dec.
    """

    def __init__(
        self, kind: str, encoder_states: int, encoder_hidden: int, decoder_layers: int,
        decoder_hidden: int,
    ) -> None:
        super().__init__()
        if kind not in BRIDGES:
            raise ValueError(f"bridge must be one of {BRIDGES}, got {kind!r}")
        self.kind = kind
        self.decoder_layers = decoder_layers
        self.decoder_hidden = decoder_hidden
        if kind == "copy" and (encoder_states % decoder_layers
                               or encoder_states // decoder_layers * encoder_hidden
                               != decoder_hidden):
            raise ValueError(
                f"bridge 'copy' passes the encoder's final states on as they are: it needs "
                f"{encoder_states} encoder states (layers x directions) of {encoder_hidden} to "
                f"fill {decoder_layers} decoder layers of {decoder_hidden}; use 'project'")
        self.directions = encoder_states // decoder_layers
        if kind == "project":
            size_in, size_out = encoder_states * encoder_hidden, decoder_layers * decoder_hidden
            self.h_proj = nn.Linear(size_in, size_out)
            self.c_proj = nn.Linear(size_in, size_out)

    def forward(
        self, final: tuple[torch.Tensor, torch.Tensor] | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """final (h_n, c_n) or h_n, each (L_enc*D, B, H_enc) -> (h_0, c_0), each (L_dec, B, H)."""
        h_n, c_n = final if isinstance(final, tuple) else (final, final)
        B = h_n.size(1)
        shape = (self.decoder_layers, B, self.decoder_hidden)
        if self.kind == "none":
            zeros = h_n.new_zeros(shape)
            return zeros, zeros
        if self.kind == "copy":
            def concat(s: torch.Tensor) -> torch.Tensor:
                s = s.view(self.decoder_layers, self.directions, B, -1)  # (L, D, B, H_enc)
                return s.permute(0, 2, 1, 3).reshape(shape)  # (L, B, D*H_enc)

            return concat(h_n), concat(c_n)

        def flat(s: torch.Tensor) -> torch.Tensor:
            return s.transpose(0, 1).reshape(B, -1)  # (B, L_enc*D*H_enc)

        def layers(s: torch.Tensor) -> torch.Tensor:
            return s.view(B, self.decoder_layers, -1).transpose(0, 1).contiguous()  # (L, B, H)

        h_0 = torch.tanh(self.h_proj(flat(h_n)))  # (B, L_dec*H_dec)
        c_0 = self.c_proj(flat(c_n))  # (B, L_dec*H_dec)
        return layers(h_0), layers(c_0)
