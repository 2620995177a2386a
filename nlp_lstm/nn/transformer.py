"""Transformer encoder with the contract of ``LSTMEncoder``: ``forward(x, lengths, state) ->
(output, state)``, batch-first, padding-correct, zero outputs after each sequence's length.

A stack of ``torch.nn.TransformerEncoderLayer`` in the pre-norm arrangement (``norm_first``:
Xiong et al. 2020; GPT-2), a final layer norm, and positions added to the (projected) inputs:
fixed sinusoids (Vaswani et al. 2017) or a learned table, for at most ``max_length`` positions.

- ``causal=False`` (an encoder for classification): every position attends to every real
  position of its sequence (a key padding mask), through the layers' own ``forward``; there is
  no state to continue from.
- ``causal=True`` (a language model): position t attends to positions <= t only, so an output
  never depends on a later input (nor on padding, which comes after the real steps). The
  returned state is a key/value cache (``KVCache``) plus the inputs read so far; passed back
  with the next steps it continues the sequence, so generating a token costs one step over the
  cached keys: O(S) in the S steps already read, not O(S^2) as a re-encoding would. The layers'
  attention is computed here from their own parameters (``nn.TransformerEncoderLayer`` has no
  cache); the results equal the layers' ``forward`` under a causal mask (tested).

Positions are absolute, so a sequence has at most ``max_length`` of them. When a continued
sequence would pass that, the state first shrinks to its last ``max_length // 2`` inputs (or
fewer, to leave room for the new steps), re-encoded at positions 0, 1, ...: from then on a step
sees between half and all of the last ``max_length`` steps (the cost of the re-encoding is spread
over the next ``max_length // 2`` steps). Within ``max_length`` the outputs equal those of the
whole sequence read at once.

Legend: B batch, T time (new steps), S steps in the state, I input features, H hidden (d_model),
L layers, N heads, K = H / N features per head, M = max_length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nlp_lstm.nn.masking import lengths_to_mask

POSITIONS = ("sinusoidal", "learned")
ACTIVATIONS = ("relu", "gelu")


class KVCache(NamedTuple):
    """What a causal ``TransformerEncoder`` needs to continue a sequence. Row b's steps sit at
    0 .. lengths[b] - 1 of the time axis (S = the longest row); what lies after them is unused.

    inputs: (B, S, I) the inputs read so far (to re-encode the last ones past ``max_length``).
    keys, values: (L, B, N, S, K) every layer's attention keys and values.
    lengths: (B,) int64, the steps read per row (= the position of its next step).
    """

    inputs: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    lengths: torch.Tensor

    def detach(self) -> KVCache:
        """The same values cut from the graph."""
        return KVCache(*(t.detach() for t in self))

    def repeat_interleave(self, n: int) -> KVCache:
        """Every row n times in a row (B -> B*n), e.g. to draw n samples from one prompt."""
        return KVCache(self.inputs.repeat_interleave(n, dim=0),  # (B*n, S, I)
                       self.keys.repeat_interleave(n, dim=1),  # (L, B*n, N, S, K)
                       self.values.repeat_interleave(n, dim=1),  # (L, B*n, N, S, K)
                       self.lengths.repeat_interleave(n))  # (B*n,)


def sinusoids(length: int, size: int) -> torch.Tensor:
    """(length, size) position encodings of Vaswani et al. (2017): sin on even features, cos on
    odd ones, wavelengths from 2 pi to 10000 * 2 pi."""
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)  # (M, 1)
    rate = torch.exp(torch.arange(0, size, 2, dtype=torch.float64)
                     * (-math.log(10000.0) / size))  # (ceil(H/2),)
    table = torch.zeros(length, size, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: size // 2])
    return table.float()  # (M, H)


def _append(past: torch.Tensor | None, new: torch.Tensor, start: torch.Tensor | None,
            longest: int, dim: int) -> torch.Tensor:
    """Write ``new``'s T steps (along ``dim``) after each row's ``start[b]`` steps of ``past``.

    Rows are along dim 0 of ``new`` and ``past`` (keys: dim 0 of each layer's slice);
    ``longest`` = max(start), and ``start`` None means every row has ``longest`` steps. Returns
    a new tensor of ``longest`` + T steps; ``past`` is never modified (the state stays a value).
    """
    if past is None:
        return new
    T = new.size(dim)
    past = past.narrow(dim, 0, longest).to(new.dtype)  # nothing real lies after max(start)
    if start is None:  # every row equally long (generation): a plain append
        return torch.cat([past, new], dim=dim)
    out = torch.cat([past, torch.zeros_like(new)], dim=dim)  # (.., longest + T, ..)
    index = start.view(-1, 1) + torch.arange(T, device=new.device)  # (B, T)
    view = [1] * new.dim()
    view[0], view[dim] = index.size(0), T
    return out.scatter(dim, index.view(view).expand_as(new), new)


class TransformerEncoder(nn.Module):
    """Pre-norm Transformer encoder, batch-first, with ``LSTMEncoder``'s padding contract.

    Args:
        input_size: I; projected to H by a linear layer when I != H.
        hidden_size: H, the model size (d_model) and the size of the outputs.
        num_layers: L.
        nhead: N, attention heads; must divide H.
        dim_feedforward: the inner size of each feed-forward block; None means 4 H.
        dropout: on the inputs plus positions, the attention weights, the residual branches and
            inside the feed-forward blocks, in training only.
        activation: ``"gelu"`` or ``"relu"`` in the feed-forward blocks.
        positions: ``"sinusoidal"`` (fixed) or ``"learned"`` (a table initialised N(0, 0.02)).
        max_length: M, the most positions a sequence can have.
        causal: each position attends to itself and earlier ones only (language models).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        nhead: int = 4,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        activation: str = "gelu",
        positions: str = "sinusoidal",
        max_length: int = 512,
        causal: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers), ("nhead", nhead),
                            ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if hidden_size % nhead:
            raise ValueError(f"nhead={nhead} must divide hidden_size={hidden_size} (d_model), "
                             f"which gives each head hidden_size / nhead features")
        if dim_feedforward is None:
            dim_feedforward = 4 * hidden_size
        if isinstance(dim_feedforward, bool) or not isinstance(dim_feedforward, int) \
                or dim_feedforward < 1:
            raise ValueError(f"dim_feedforward must be a positive integer or None, got "
                             f"{dim_feedforward!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nhead, self.dim_feedforward = nhead, dim_feedforward
        self.dropout, self.activation = float(dropout), activation
        self.positions, self.max_length, self.causal = positions, max_length, bool(causal)

        self.input_projection = (nn.Linear(input_size, hidden_size)
                                 if input_size != hidden_size else None)
        if positions == "learned":
            self.position = nn.Parameter(torch.empty(max_length, hidden_size))  # (M, H)
        else:  # rebuilt from the arguments, so not saved with the weights
            self.register_buffer("position", sinusoids(max_length, hidden_size), persistent=False)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(hidden_size, nhead, dim_feedforward, dropout, activation,
                                       batch_first=True, norm_first=True)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(hidden_size)  # pre-norm leaves the last residual sum unnormed
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        """H, the feature size of ``output``."""
        return self.hidden_size

    def reset_parameters(self) -> None:
        if self.positions == "learned":
            nn.init.normal_(self.position, std=0.02)

    # ------------------------------------------------------------------ checks
    def _check(
        self, x: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None,
        state: KVCache | None,
    ) -> torch.Tensor | None:
        """Validate; returns lengths as int64 on x's device, or None when all are T."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a 3-D tensor (B, T, {self.input_size}), got {shape}")
        B, T, features = x.shape
        if features != self.input_size:
            raise ValueError(f"x has {features} features, expected input_size={self.input_size}")
        if T == 0 or B == 0:
            raise ValueError(f"x needs at least one sequence and one step, got {tuple(x.shape)}")
        if self.max_length < T:
            raise ValueError(f"x has T={T} steps, more than max_length={self.max_length} "
                             "positions")
        if state is not None:
            if not self.causal:
                raise ValueError("state continues a causal encoder only; this one has "
                                 "causal=False (every position sees the whole sequence)")
            if not isinstance(state, KVCache):
                raise ValueError(f"state must be a KVCache or None, got {type(state).__name__}")
            S = state.inputs.size(1)
            N, K = self.nhead, self.hidden_size // self.nhead
            expected = {"inputs": (B, S, self.input_size), "keys": (self.num_layers, B, N, S, K),
                        "values": (self.num_layers, B, N, S, K), "lengths": (B,)}
            for name, shape in expected.items():
                got = tuple(getattr(state, name).shape)
                if got != shape:
                    raise ValueError(f"state.{name} has shape {got}, expected {shape}")
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.numel() != B:
            raise ValueError(f"lengths must be 1-D of size B={B}, got shape "
                             f"{tuple(lengths.shape)}")
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex \
                or lengths.dtype == torch.bool:
            raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths must lie in [1, T={T}], got min {lo} and max {hi}")
        if lo == T:
            return None
        return lengths.to(device=x.device, dtype=torch.int64)

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
        state: KVCache | None = None,
    ) -> tuple[torch.Tensor, KVCache | None]:
        """Encode a padded batch.

        Args:
            x: (B, T, I), T <= max_length.
            lengths: (B,) integers in [1, T], any order, on any device; None means all T.
            state: causal encoders only: the state a previous call returned, to continue those
                sequences (the new steps come after each row's real steps); None starts them.

        Returns:
            output (B, T, H), zero after each sequence's length, and the state to continue from
            (causal), or None (not causal).
        """
        lengths = self._check(x, lengths, state)
        if self.causal:
            return self._forward_causal(x, lengths, state)
        return self._forward_full(x, lengths), None

    def _embed(self, x: torch.Tensor, start: torch.Tensor | None) -> torch.Tensor:
        """Project x (B, T, I) to H and add the positions start[b] + t (0 + t without start)."""
        h = x if self.input_projection is None else self.input_projection(x)  # (B, T, H)
        steps = torch.arange(x.size(1), device=x.device)  # (T,)
        if start is None:
            h = h + self.position[steps].to(h.dtype)  # (B, T, H)
        else:
            h = h + self.position[start.unsqueeze(1) + steps].to(h.dtype)  # (B, T, H)
        return F.dropout(h, self.dropout, self.training)

    def _finish(self, h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(h)  # (B, T, H)
        if lengths is None:
            return h
        return torch.where(lengths_to_mask(lengths, h.size(1)).unsqueeze(2), h, 0.0)

    def _forward_full(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Bidirectional attention over the real positions, by the layers' own forward."""
        padding = None if lengths is None else ~lengths_to_mask(lengths, x.size(1))  # (B, T)
        h = self._embed(x, None)  # (B, T, H)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=padding)  # (B, T, H)
        return self._finish(h, lengths)

    def _forward_causal(
        self, x: torch.Tensor, lengths: torch.Tensor | None, state: KVCache | None
    ) -> tuple[torch.Tensor, KVCache]:
        B, T, _ = x.shape
        longest = 0 if state is None else int(state.lengths.max())  # the one sync of a call
        if state is not None and longest + T > self.max_length:
            state = self._shrink(state, min(self.max_length // 2, self.max_length - T))
            longest = 0 if state is None else int(state.lengths.max())
        start = None if state is None else state.lengths.to(x.device)  # (B,)
        h = self._embed(x, start)  # (B, T, H)
        mask = None  # without a state, plain causal attention (padding comes after real steps)
        rows = None  # each row's start where rows differ, else None (all start at `longest`)
        if start is not None:
            S = longest + T  # key slots after the append
            query = start.unsqueeze(1) + torch.arange(T, device=x.device)  # (B, T)
            key = torch.arange(S, device=x.device)  # (S,)
            mask = (key.view(1, 1, S) <= query.unsqueeze(2)).unsqueeze(1)  # (B, 1, T, S)
            rows = None if bool((start == longest).all()) else start
        keys, values = [], []
        for k, layer in enumerate(self.layers):
            past_k = None if state is None else state.keys[k]  # (B, N, S_old, K)
            past_v = None if state is None else state.values[k]
            h, key_k, value_k = self._block(layer, h, past_k, past_v, rows, longest, mask)
            keys.append(key_k)
            values.append(value_k)
        new = torch.full((B,), T, device=x.device) if lengths is None else lengths
        cache = KVCache(_append(None if state is None else state.inputs, x, rows, longest, 1),
                        torch.stack(keys), torch.stack(values),  # (L, B, N, S, K) each
                        new if start is None else start + new)
        return self._finish(h, lengths), cache

    def _block(
        self, layer: nn.TransformerEncoderLayer, h: torch.Tensor, past_k: torch.Tensor | None,
        past_v: torch.Tensor | None, rows: torch.Tensor | None, longest: int,
        mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pre-norm layer over the new steps h (B, T, H) with the cached keys: the
        computation of ``layer.forward`` (norm_first) with the keys and values kept."""
        B, T, H = h.shape
        N = self.nhead
        attention = layer.self_attn
        qkv = F.linear(layer.norm1(h), attention.in_proj_weight, attention.in_proj_bias)
        q, k, v = (t.view(B, T, N, H // N).transpose(1, 2)
                   for t in qkv.chunk(3, dim=2))  # (B, N, T, K) each
        k = _append(past_k, k, rows, longest, dim=2)  # (B, N, S, K)
        v = _append(past_v, v, rows, longest, dim=2)  # (B, N, S, K)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None,
            dropout_p=attention.dropout if self.training else 0.0)  # (B, N, T, K)
        a = a.transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        h = h + layer.dropout1(attention.out_proj(a))
        inner = layer.dropout(layer.activation(layer.linear1(layer.norm2(h))))  # (B, T, F)
        return h + layer.dropout2(layer.linear2(inner)), k, v

    def _shrink(self, state: KVCache, keep: int) -> KVCache | None:
        """The state of each row's last ``keep`` inputs read afresh (positions from 0)."""
        n = state.lengths  # (B,)
        kept = n.clamp(max=keep)  # (B,)
        longest = int(kept.max())
        if longest == 0:
            return None
        index = (n - kept).unsqueeze(1) + torch.arange(longest, device=n.device)  # (B, longest)
        index = index.clamp(max=state.inputs.size(1) - 1)  # rows shorter than `longest`
        inputs = state.inputs.gather(
            1, index.unsqueeze(2).expand(-1, -1, state.inputs.size(2)))  # (B, longest, I)
        full = bool((kept == longest).all())
        _, cache = self._forward_causal(inputs, None if full else kept, None)
        return cache
