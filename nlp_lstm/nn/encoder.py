"""Multi-layer, optionally bidirectional LSTM (or GRU) encoder over padded, variable-length batches.

Parameters carry the names and shapes of ``torch.nn.LSTM`` / ``torch.nn.GRU``
(``weight_ih_l{k}[_reverse]`` and so on, gate order i, f, g, o; GRU r, z, n), so state dicts
interchange in both directions. Implementations share them:

- ``"loop"``: our recurrence, written out in PyTorch on the packed batch (``packing.py``): one
  input matmul for all real tokens, then one matmul and the gate math per step on the sequences
  still running. The plain LSTM has a hand-written backward (``autograd.py``); the variants
  (layer norm, weight drop, GRU) live here.
- ``"fused"``: PyTorch's fused kernels (``fused.py``) called with these same parameters. Unequal
  lengths are packed on GPU (cuDNN) and run padded, layer by layer, with saturated gates at the
  padded steps on CPU, where the packed kernel is slow.
- ``"auto"``: ``"fused"`` whenever the configuration allows it, else ``"loop"``; and ``"loop"``
  for an LSTM batch of unequal lengths on CPU, where it is faster and leaner than the fused
  kernel run either packed or padded.

Under CPU autocast on a CPU whose fused kernel has no autocast-dtype version (oneDNN's bfloat16
LSTM on AVX2-only machines, ``fused.cpu_autocast_supported``), the fused path runs in the
parameters' dtype and returns its outputs in the autocast dtype, as the kernel would have.
``"auto"`` then takes it for LSTM batches of unequal lengths too: the loop would run in the
autocast dtype, whose matmuls such a CPU lacks as well.

Padding semantics are those of ``nn.LSTM`` on a ``PackedSequence``: outputs are zero after each
sequence's length, the final state of a sequence is the state at its last real token, and the
reverse direction starts at that token. Padded steps get exactly zero gradient: the loop never
computes them, the padded fused path saturates their gates.

Legend: B batch, T time, I input features, H hidden, L layers, D directions, G gates (4 LSTM,
3 GRU).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nlp_lstm.nn.autograd import lstm_sequence
from nlp_lstm.nn.fused import (
    cpu_autocast_supported,
    fused_full,
    fused_packed,
    fused_padded_layer,
    pad_column,
)
from nlp_lstm.nn.gru import gru_sequence
from nlp_lstm.nn.layer_norm_lstm import layer_norm, layer_norm_lstm_sequence
from nlp_lstm.nn.masking import check_lengths, check_sequences, lengths_to_mask
from nlp_lstm.nn.packing import Packing
from nlp_lstm.nn.transformer import TransformerEncoder

LSTMState = tuple[torch.Tensor, torch.Tensor]
State = LSTMState | torch.Tensor  # (h, c) for the LSTM, h for the GRU
IMPLS = ("auto", "fused", "loop")
INITS = ("xavier", "torch")  # the decoder's
ENCODER_INITS = (*INITS, "chrono")
CELLS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}


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


def check_max_timescale(max_timescale: object) -> None:
    """``init="chrono"`` draws tau from U(1, max_timescale - 1): an integer >= 3 is needed."""
    if not isinstance(max_timescale, int) or max_timescale < 3:
        raise ValueError("init='chrono' needs max_timescale, an integer >= 3 (the longest "
                         f"dependency in steps), got {max_timescale!r}")


def init_recurrent_weights(
    w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor, *,
    cell: str = "lstm", init: str = "xavier", max_timescale: int | None = None,
) -> None:
    """Initialise one layer and direction in place (``w_hh`` is (G*H, H)).

    ``"xavier"``: Xavier-uniform input weights, an orthogonal (H, H) block per gate of the
    recurrent weights, zero biases except an LSTM forget-gate total bias of 1.0.
    ``"torch"``: PyTorch's default, U(-1/sqrt(H), 1/sqrt(H)) for every tensor.
    ``"chrono"``: the Xavier weights with chrono biases (Tallec & Ollivier 2018): per unit a
    memory timescale tau ~ U(1, max_timescale - 1), the LSTM forget bias log(tau) and input bias
    -log(tau), the GRU update-gate (z) bias log(tau), so that units keep their state for up to
    ``max_timescale`` steps from the start of training.
    """
    H = w_hh.size(1)
    with torch.no_grad():
        if init == "torch":
            for p in (w_ih, w_hh, b_ih, b_hh):
                p.uniform_(-(H**-0.5), H**-0.5)
            return
        nn.init.xavier_uniform_(w_ih)
        for block in w_hh.split(H, dim=0):  # G x (H, H), one per gate
            nn.init.orthogonal_(block)
        b_ih.zero_()
        b_hh.zero_()
        if init == "chrono":
            check_max_timescale(max_timescale)
            log_tau = torch.empty(H).uniform_(1.0, max_timescale - 1.0).log_()  # (H,)
            b_ih[H : 2 * H] = log_tau  # LSTM gates i, f, g, o; GRU gates r, z, n
            if cell == "lstm":
                b_ih[:H] = -log_tau
        elif cell == "lstm":  # remember by default (Jozefowicz et al. 2015)
            b_ih[H : 2 * H] = 1.0


def at_last_step(seq: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """seq (B, T, F) -> (B, F), each sequence's entry at its last real step."""
    if lengths is None:
        return seq[:, -1]
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, seq.size(2))  # (B, 1, F)
    return seq.gather(1, index).squeeze(1)  # (B, F)


class LSTMEncoder(nn.Module):
    """LSTM (or GRU) encoder, batch-first, exact against ``torch.nn.LSTM`` / ``torch.nn.GRU``.

    Args:
        input_size: I.
        hidden_size: H.
        num_layers: L.
        bidirectional: D = 2 if True else 1.
        dropout: dropout on the outputs of every layer but the last, in training only.
        cell: ``"lstm"`` or ``"gru"``.
        layer_norm: layer norm on the gate pre-activations (input and recurrent halves
            separately) and, for the LSTM, on the cell (Ba et al. 2016). Loop path only.
        weight_drop: DropConnect probability on the recurrent weights, one mask per forward
            (Merity et al. 2018, AWD-LSTM). Loop path only; a no-op in eval mode.
        init: ``"xavier"`` (Xavier-uniform input weights, orthogonal recurrent gate blocks, zero
            biases except an LSTM forget-gate total bias of 1.0), ``"torch"`` (PyTorch's
            default) or ``"chrono"`` (the Xavier weights with chrono gate biases, Tallec &
            Ollivier 2018: for dependencies longer than ~20 steps; see
            ``init_recurrent_weights``).
        max_timescale: the longest dependency in steps, for ``init="chrono"`` only.
        impl: ``"loop"``, ``"fused"`` or ``"auto"``: fused whenever the configuration allows,
            except an LSTM batch of unequal lengths on CPU, where the packed loop is faster and
            leaner than either way of running the fused kernel.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        cell: str = "lstm",
        layer_norm: bool = False,
        weight_drop: float = 0.0,
        init: str = "xavier",
        max_timescale: int | None = None,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("dropout", dropout), ("weight_drop", weight_drop)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if init not in ENCODER_INITS:
            raise ValueError(f"init must be one of {ENCODER_INITS}, got {init!r}")
        if init == "chrono":
            check_max_timescale(max_timescale)
        if init != "chrono" and max_timescale is not None:
            raise ValueError(f"max_timescale={max_timescale!r} is for init='chrono' only, got "
                             f"init={init!r}")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        if impl == "fused" and (layer_norm or weight_drop > 0):
            raise ValueError(
                f"layer_norm={layer_norm!r} and weight_drop={weight_drop!r} need impl='loop' or "
                "'auto', got impl='fused' (the fused kernels have no variants)"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.dropout = float(dropout)
        self.cell = cell
        self.layer_norm = bool(layer_norm)
        self.weight_drop = float(weight_drop)
        self.impl = impl
        self.init = init
        self.max_timescale = max_timescale

        G, H = GATES[cell], hidden_size
        self._names: list[tuple[str, str, str, str]] = []  # per (layer, direction), nn.LSTM order
        self._suffixes: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                sfx = f"l{layer}" + ("_reverse" if direction == 1 else "")
                names = (f"weight_ih_{sfx}", f"weight_hh_{sfx}", f"bias_ih_{sfx}", f"bias_hh_{sfx}")
                shapes = ((G * H, layer_input), (G * H, H), (G * H,), (G * H,))
                for name, shape in zip(names, shapes, strict=True):
                    self.register_parameter(name, nn.Parameter(torch.empty(shape)))
                self._names.append(names)
                self._suffixes.append(sfx)
                if self.layer_norm:
                    sizes = {"ih": G * H, "hh": G * H} | ({"c": H} if cell == "lstm" else {})
                    for part, size in sizes.items():
                        for kind in ("weight", "bias"):
                            self.register_parameter(f"ln_{part}_{kind}_{sfx}",
                                                    nn.Parameter(torch.empty(size)))
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        """D*H, the feature size of ``output``."""
        return self.num_directions * self.hidden_size

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for names, sfx in zip(self._names, self._suffixes, strict=True):
                init_recurrent_weights(*(getattr(self, n) for n in names), cell=self.cell,
                                       init=self.init, max_timescale=self.max_timescale)
                if self.layer_norm:
                    for part in ("ih", "hh", "c") if self.cell == "lstm" else ("ih", "hh"):
                        getattr(self, f"ln_{part}_weight_{sfx}").fill_(1.0)
                        getattr(self, f"ln_{part}_bias_{sfx}").zero_()

    def _resolve_impl(
        self, x: torch.Tensor | None = None, lengths: torch.Tensor | None = None
    ) -> str:
        if self.impl != "auto":
            return self.impl
        if self.layer_norm or (self.weight_drop > 0 and self.training):
            return "loop"
        if (self.cell == "lstm" and x is not None and x.device.type == "cpu"
                and (lengths is not None or x.size(0) * x.size(1) == 1)):
            # Unequal lengths on CPU: the fused kernel either runs packed (slow per-step path) or
            # padded (oneDNN, about 4x the memory of packed nn.LSTM); our packed loop beats both
            # in time and memory (benchmarks/results/RESULTS.md). One step of one sequence
            # (generating): oneDNN lays the weights out afresh on every call, 2-6x the cost of
            # our step at H = 256-512 (benchmarks/compare, section 5). Not under autocast on a
            # CPU without the low-precision LSTM: it lacks fast low-precision matmuls too, and
            # the loop in bfloat16 took 20x the time of the padded kernel in float32
            # (benchmarks/autocast.py).
            return "fused" if self._autocast_fallback(x) else "loop"
        return "fused"

    def _autocast_fallback(self, x: torch.Tensor) -> torch.dtype | None:
        """The CPU autocast dtype when x is on CPU under autocast and this CPU's fused kernel
        fails in it (``fused.cpu_autocast_supported``), else None."""
        if x.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
            return None
        dtype = torch.get_autocast_dtype("cpu")
        return None if cpu_autocast_supported(self.cell, dtype) else dtype

    # ------------------------------------------------------------------ checks
    def _check_inputs(
        self, x: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None, state: State | None
    ) -> torch.Tensor | None:
        """Validate; returns lengths as int64 on x's device, or None when all are T."""
        B, T = check_sequences(x, self.input_size)
        if state is not None:
            expected = (self.num_layers * self.num_directions, B, self.hidden_size)
            if self.cell == "lstm":
                if not isinstance(state, (tuple, list)) or len(state) != 2:
                    raise ValueError(f"state must be a tuple (h_0, c_0) for cell='lstm', got "
                                     f"{type(state).__name__}")
                named = zip(("h_0", "c_0"), state, strict=True)
            else:
                if not isinstance(state, torch.Tensor):
                    raise ValueError(f"state must be a tensor h_0 for cell='gru', got "
                                     f"{type(state).__name__}")
                named = [("h_0", state)]
            for name, s in named:
                if tuple(s.shape) != expected:
                    raise ValueError(f"{name} has shape {tuple(s.shape)}, expected {expected}")
        return check_lengths(lengths, B, T, x.device)

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
            state: optional initial state: (h_0, c_0) for the LSTM, h_0 for the GRU, each
                (L*D, B, H).

        Returns:
            output (B, T, D*H), zero after each sequence's length, and the final state, (h_n, c_n)
            for the LSTM, h_n for the GRU, each (L*D, B, H), taken at each sequence's last real
            token.
        """
        lengths = self._check_inputs(x, lengths, state)
        if state is None:
            zeros = x.new_zeros(self.num_layers * self.num_directions, x.size(0), self.hidden_size)
            states = (zeros, zeros) if self.cell == "lstm" else (zeros,)
        else:
            states = tuple(state) if self.cell == "lstm" else (state,)
        if self._resolve_impl(x, lengths) == "loop":
            return self._forward_loop(x, lengths, states)
        dtype = self._autocast_fallback(x)
        if dtype is None:
            return self._forward_fused(x, lengths, states)
        # The kernel fails in the autocast dtype on this CPU: run it in the parameters' dtype,
        # as fast as without autocast; the loop in the autocast dtype, whose matmuls such a CPU
        # also lacks, took 20 to 40x that time (benchmarks/autocast.py).
        own = self.weight_ih_l0.dtype
        with torch.autocast("cpu", enabled=False):
            output, final = self._forward_fused(x.to(own), lengths,
                                                tuple(s.to(own) for s in states))
        if self.cell == "lstm":
            return output.to(dtype), (final[0].to(dtype), final[1].to(dtype))
        return output.to(dtype), final.to(dtype)

    def _forward_fused(
        self, x: torch.Tensor, lengths: torch.Tensor | None, states: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, State]:
        """PyTorch's fused kernels: one call for all layers, or one per layer and direction."""
        dropout = self.dropout if self.training else 0.0
        hx = states if self.cell == "lstm" else states[0]
        args = (self._flat_weights(), self.num_layers, dropout, self.training, self.bidirectional)
        if lengths is None:
            return fused_full(self.cell, x, hx, *args)
        if x.device.type != "cpu":
            return fused_packed(self.cell, x, lengths, hx, *args)
        return self._forward_padded(x, lengths, states)

    def _flat_weights(self) -> list[torch.Tensor]:
        return [getattr(self, name) for names in self._names for name in names]

    def _final(self, h_n: list[torch.Tensor], c_n: list[torch.Tensor]) -> State:
        if self.cell == "lstm":
            return torch.stack(h_n), torch.stack(c_n)  # (L*D, B, H) each
        return torch.stack(h_n)  # (L*D, B, H)

    def _forward_padded(
        self, x: torch.Tensor, lengths: torch.Tensor, states: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, State]:
        """Fused kernels on the padded batch, one call per layer and direction (see fused.py)."""
        mask = lengths_to_mask(lengths, x.size(1)).unsqueeze(2)  # (B, T, 1)
        pad = (~mask).to(x.dtype)  # (B, T, 1), the padding feature
        column = pad_column(self.cell, self.hidden_size, x)  # (G*H, 1)
        h_n, c_n = [], []
        layer_input = x  # (B, T, I), then (B, T, D*H)
        for layer in range(self.num_layers):
            x_aug = torch.cat([layer_input, pad.to(layer_input.dtype)], dim=2)  # (B, T, F + 1)
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                weights = [getattr(self, n) for n in self._names[k]]
                inp = x_aug if direction == 0 else reverse_padded(x_aug, lengths)
                hx = tuple(s[k : k + 1] for s in states)  # (1, B, H) each
                out, c_last = fused_padded_layer(self.cell, inp, weights,
                                                 hx if self.cell == "lstm" else hx[0], column,
                                                 self.training)  # (B, T, H), (B, H)
                h_n.append(at_last_step(out, lengths))
                c_n.append(c_last)
                outputs.append(out if direction == 0 else reverse_padded(out, lengths))
            layer_input = torch.cat(outputs, dim=2)  # (B, T, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        # Padded steps hold garbage up to here; the next layer ignored it (saturated gates).
        output = torch.where(mask, layer_input, 0.0)  # (B, T, D*H)
        return output, self._final(h_n, c_n)

    def _forward_loop(
        self, x: torch.Tensor, lengths: torch.Tensor | None, states: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, State]:
        """Our recurrences on the packed batch: padded steps are never computed."""
        packing = Packing(lengths, x.size(0), x.size(1), x.device)
        h_n, c_n = [], []
        layer_input = packing.pack(x)  # (N, I), then (N, D*H)
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                inp = layer_input if direction == 0 else packing.reverse(layer_input)
                hs, cs = self.run_direction(k, inp, packing.batch_sizes,
                                             *(packing.sort(s[k]) for s in states))  # (N, H)
                h_n.append(packing.last(hs))
                if cs is not None:
                    c_n.append(packing.last(cs))
                outputs.append(hs if direction == 0 else packing.reverse(hs))
            layer_input = torch.cat(outputs, dim=1)  # (N, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        return packing.unpack(layer_input), self._final(h_n, c_n)  # (B, T, D*H)

    def run_direction(
        self, k: int, x: torch.Tensor, batch_sizes: list[int], h0: torch.Tensor,
        c0: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One direction of one layer (k = layer * D + direction) over packed rows, our loop:
        packed x (N, F) in the layout of ``Packing``, h0 and c0 (B, H) in its sorted order ->
        hs, cs (N, H) (cs None for the GRU). The backward direction's x comes reversed within
        each sequence (``Packing.reverse``): this runs the recurrence forward in the rows' order.
        """
        w_ih, w_hh, b_ih, b_hh = (getattr(self, n) for n in self._names[k])
        if self.weight_drop > 0:  # one DropConnect mask for all steps and sequences
            w_hh = F.dropout(w_hh, self.weight_drop, self.training)
        norms = {}
        if self.layer_norm:
            sfx = self._suffixes[k]
            for part in ("ih", "hh", "c"):
                if hasattr(self, f"ln_{part}_weight_{sfx}"):
                    norms[part] = layer_norm(getattr(self, f"ln_{part}_weight_{sfx}"),
                                             getattr(self, f"ln_{part}_bias_{sfx}"))
        if self.cell == "gru":
            return gru_sequence(x, h0, batch_sizes, w_ih, w_hh, b_ih, b_hh, norms.get("ih"),
                                norms.get("hh")), None
        if self.layer_norm:
            return layer_norm_lstm_sequence(x, h0, c0, batch_sizes, w_ih, w_hh, b_ih + b_hh,
                                            norms["ih"], norms["hh"], norms["c"])
        gates_x = F.linear(x, w_ih, b_ih + b_hh)  # (N, 4H), all steps in one matmul
        return lstm_sequence(gates_x, h0, c0, w_hh, batch_sizes)  # (N, H) each


ENCODER_KINDS = ("recurrent", "transformer")


def build_encoder(
    input_size: int, settings: Mapping[str, object], kinds: Sequence[str] = ENCODER_KINDS,
) -> LSTMEncoder | TransformerEncoder:
    """An encoder from a model's plain ``encoder`` mapping; the input size comes from the model.

    ``kind`` picks the class: ``"recurrent"`` (the default, so mappings written before there was
    a choice still build) an ``LSTMEncoder`` (``cell`` = lstm or gru), ``"transformer"`` a
    ``TransformerEncoder``; the other keys are that class's arguments. An unknown kind, a kind
    the model cannot use (not in ``kinds``) or an unknown key is a ValueError naming it.
    """
    settings = dict(settings)
    kind = settings.pop("kind", "recurrent")
    if kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}; expected one of {ENCODER_KINDS}")
    if kind not in kinds:
        raise ValueError(f"encoder kind {kind!r} does not fit this model; expected one of "
                         f"{tuple(kinds)}")
    cls = TransformerEncoder if kind == "transformer" else LSTMEncoder
    known = [name for name in inspect.signature(cls).parameters if name != "input_size"]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"unknown encoder setting(s) {unknown} for kind {kind!r}; expected "
                         f"some of {known}")
    return cls(input_size, **settings)
