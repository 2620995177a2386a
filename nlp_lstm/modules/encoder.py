"""Multi-layer, optionally bidirectional LSTM encoder over padded, variable-length batches.

Parameters carry the names and shapes of ``torch.nn.LSTM`` (``weight_ih_l{k}[_reverse]`` and so
on, gate order i, f, g, o), so state dicts interchange in both directions. Two implementations
share them:

- ``"loop"``: our recurrence, written out in PyTorch (one input matmul for all steps, then one
  matmul and the gate math per step). It is the reference.
- ``"fused"``: PyTorch's fused kernel (cuDNN on GPU, oneDNN/native on CPU), called with these
  same parameters on a packed batch.

Padding semantics are those of ``nn.LSTM`` on a ``PackedSequence``: outputs are zero after each
sequence's length, the final state of a sequence is the state at its last real token, and the
reverse direction starts at that token.

Legend: B batch, T time, I input features, H hidden, L layers, D directions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from nlp_lstm.modules.cell import lstm_step
from nlp_lstm.modules.masking import lengths_to_mask

State = tuple[torch.Tensor, torch.Tensor]
IMPLS = ("auto", "fused", "loop")
INITS = ("xavier", "torch")


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence within its own length; padding stays where it is.

    Args:
        x: (B, T, F).
        lengths: (B,) on x's device, or None when every sequence has length T.

    Returns:
        (B, T, F). The map is its own inverse.
    """
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, T)
    last = lengths.unsqueeze(1) - 1  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return x.gather(1, index.unsqueeze(2).expand_as(x))  # (B, T, F)


class LSTMEncoder(nn.Module):
    """LSTM encoder, batch-first, exact against ``torch.nn.LSTM``.

    Args:
        input_size: I.
        hidden_size: H.
        num_layers: L.
        bidirectional: D = 2 if True else 1.
        dropout: dropout on the outputs of every layer but the last, in training only.
        init: ``"xavier"`` (Xavier-uniform input weights, orthogonal recurrent gate blocks, zero
            biases except a forget-gate total bias of 1.0) or ``"torch"`` (PyTorch's default).
        impl: ``"loop"``, ``"fused"`` or ``"auto"`` (fused whenever the configuration allows).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        init: str = "xavier",
        impl: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.dropout = float(dropout)
        self.impl = impl
        self.init = init

        self._names: list[tuple[str, str, str, str]] = []  # per (layer, direction), nn.LSTM order
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                sfx = f"l{layer}" + ("_reverse" if direction == 1 else "")
                names = (f"weight_ih_{sfx}", f"weight_hh_{sfx}", f"bias_ih_{sfx}", f"bias_hh_{sfx}")
                shapes = ((4 * hidden_size, layer_input), (4 * hidden_size, hidden_size),
                          (4 * hidden_size,), (4 * hidden_size,))
                for name, shape in zip(names, shapes, strict=True):
                    self.register_parameter(name, nn.Parameter(torch.empty(shape)))
                self._names.append(names)
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        """D*H, the feature size of ``output``."""
        return self.num_directions * self.hidden_size

    def reset_parameters(self) -> None:
        H = self.hidden_size
        with torch.no_grad():
            for w_ih_name, w_hh_name, b_ih_name, b_hh_name in self._names:
                w_ih, w_hh = getattr(self, w_ih_name), getattr(self, w_hh_name)
                b_ih, b_hh = getattr(self, b_ih_name), getattr(self, b_hh_name)
                if self.init == "torch":
                    bound = H**-0.5
                    for p in (w_ih, w_hh, b_ih, b_hh):
                        p.uniform_(-bound, bound)
                    continue
                nn.init.xavier_uniform_(w_ih)
                for block in w_hh.split(H, dim=0):  # 4 x (H, H), one per gate
                    nn.init.orthogonal_(block)
                b_ih.zero_()
                b_hh.zero_()
                b_ih[H : 2 * H] = 1.0  # forget gate: remember by default (Jozefowicz et al. 2015)

    def _resolve_impl(self) -> str:
        return "fused" if self.impl == "auto" else self.impl

    # ------------------------------------------------------------------ checks
    def _check_inputs(
        self, x: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None, state: State | None
    ) -> torch.Tensor | None:
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a 3-D tensor (B, T, {self.input_size}), got {shape}")
        B, T, features = x.shape
        if features != self.input_size:
            raise ValueError(f"x has {features} features, expected input_size={self.input_size}")
        if T == 0 or B == 0:
            raise ValueError(f"x needs at least one sequence and one step, got {tuple(x.shape)}")
        if state is not None:
            expected = (self.num_layers * self.num_directions, B, self.hidden_size)
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError("state must be a tuple (h_0, c_0)")
            for name, s in zip(("h_0", "c_0"), state, strict=True):
                if tuple(s.shape) != expected:
                    raise ValueError(f"{name} has shape {tuple(s.shape)}, expected {expected}")
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.numel() != B:
            raise ValueError(
                f"lengths must be 1-D of size B={B}, got shape {tuple(lengths.shape)}"
            )
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths must lie in [1, T={T}], got min {lo} and max {hi}")
        return lengths.to(torch.int64)

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
        state: State | None = None,
    ) -> tuple[torch.Tensor, State]:
        """Encode a padded batch.

        Args:
            x: (B, T, I).
            lengths: (B,) integers in [1, T], any order, on any device; None means all T.
            state: optional initial (h_0, c_0), each (L*D, B, H).

        Returns:
            output (B, T, D*H), zero after each sequence's length, and (h_n, c_n), each
            (L*D, B, H), taken at each sequence's last real token.
        """
        lengths = self._check_inputs(x, lengths, state)
        if state is None:
            zeros = x.new_zeros(self.num_layers * self.num_directions, x.size(0), self.hidden_size)
            state = (zeros, zeros)
        if self._resolve_impl() == "fused":
            return self._forward_fused(x, lengths, state)
        return self._forward_loop(x, lengths, state)

    def _flat_weights(self) -> list[torch.Tensor]:
        return [getattr(self, name) for names in self._names for name in names]

    def _forward_fused(
        self, x: torch.Tensor, lengths: torch.Tensor | None, state: State
    ) -> tuple[torch.Tensor, State]:
        dropout = self.dropout if self.training else 0.0
        args = (self._flat_weights(), True, self.num_layers, dropout, self.training,
                self.bidirectional)
        if lengths is None or bool((lengths == x.size(1)).all()):
            output, h_n, c_n = torch._VF.lstm(x, state, *args, True)  # batch_first=True
            return output, (h_n, c_n)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h_0 = state[0].index_select(1, packed.sorted_indices)  # (L*D, B, H), sorted by length
        c_0 = state[1].index_select(1, packed.sorted_indices)
        data, h_n, c_n = torch._VF.lstm(packed.data, packed.batch_sizes, (h_0, c_0), *args)
        output, _ = pad_packed_sequence(
            PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                           packed.unsorted_indices),
            batch_first=True, total_length=x.size(1),
        )  # (B, T, D*H)
        h_n = h_n.index_select(1, packed.unsorted_indices)  # (L*D, B, H), batch order
        c_n = c_n.index_select(1, packed.unsorted_indices)
        return output, (h_n, c_n)

    def _forward_loop(
        self, x: torch.Tensor, lengths: torch.Tensor | None, state: State
    ) -> tuple[torch.Tensor, State]:
        T = x.size(1)
        if lengths is not None:
            lengths = lengths.to(x.device)
        mask = None if lengths is None else lengths_to_mask(lengths, T)  # (B, T)
        h_n, c_n = [], []
        layer_input = x  # (B, T, I) for the first layer, (B, T, D*H) after
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                w_ih, w_hh, b_ih, b_hh = (getattr(self, n) for n in self._names[k])
                inp = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
                gates_x = F.linear(inp, w_ih, b_ih + b_hh)  # (B, T, 4H), all steps at once
                out, (h, c) = self._recur(gates_x, mask, state[0][k], state[1][k], w_hh)
                if direction == 1:
                    out = reverse_padded(out, lengths)
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
            layer_input = torch.cat(outputs, dim=2)  # (B, T, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        return layer_input, (torch.stack(h_n), torch.stack(c_n))  # (L*D, B, H) each

    @staticmethod
    def _recur(
        gates_x: torch.Tensor,
        mask: torch.Tensor | None,
        h: torch.Tensor,
        c: torch.Tensor,
        w_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, State]:
        """Run one direction of one layer: gates_x (B, T, 4H), mask (B, T) -> (B, T, H), (h, c)."""
        outputs = []
        steps = gates_x.unbind(1)  # T x (B, 4H)
        masks = mask.unsqueeze(2).unbind(1) if mask is not None else [None] * len(steps)
        for gx, m in zip(steps, masks, strict=True):
            h_new, c_new = lstm_step(gx, h, c, w_hh)
            if m is None:
                h, c = h_new, c_new
                outputs.append(h_new)
            else:  # past a sequence's end its state stays put and its output is zero
                h = torch.where(m, h_new, h)
                c = torch.where(m, c_new, c)
                outputs.append(h_new * m)
        return torch.stack(outputs, dim=1), (h, c)  # (B, T, H)
