"""Attention LSTM decoder, one step a call (Luong et al. 2015; Bahdanau et al. 2015).

Luong's flow (``luong_dot``, ``luong_general``, ``luong_concat``), at step t:

    x_t       = [E y_{t-1}; h~_{t-1}]            input feeding (x_t = E y_{t-1} without)
    h_t       = LSTM_L(... LSTM_1(x_t))           L layers, dropout between them
    a_t, c_t  = attention(h_t, memory)            query: the top layer's new state
    h~_t      = dropout(tanh(W_c [c_t; h_t]))     the attentional vector
    logits_t  = W_o h~_t + b_o                    or tied: E (P h~_t) + b_o

Bahdanau's flow (``bahdanau``): the previous top state is the query, and the context joins the
input of the recurrence: ``a_t, c_t = attention(h_{t-1}, memory)``, ``x_t = [E y_{t-1}; c_t]``
(and ``h~_{t-1}`` too with input feeding); ``h~_t`` and the logits as above.

Dropout applies to the target embeddings, between layers and to ``h~_t``, which is both the
input of the output layer and, with input feeding, the next step's feed (as in OpenNMT-py).

``step`` is a pure function of its inputs; ``forward`` (teacher forcing) loops over the same
``_advance`` and differs only in doing the work that does not depend on the recurrence once for
all steps: the embeddings' share of the first layer's gates before the loop, the output layer
(logits depend on ``h~_t`` only) after it. Given the target lengths, it skips padded steps.
The attention keys are computed once per source (``prepare_memory``).

Recurrent parameters carry ``torch.nn.LSTM``'s names, shapes and gate order (``weight_ih_l{k}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``; i, f, g, o) and the encoder's ``init``
rules. The first layer's input columns are ordered [embedding; context (Bahdanau); feed].

Legend: B batch (rows: sentences, or sentences x beams in a beam search), T target length,
S source length, E embedding, H hidden, M memory (encoder output) size, A attention key size,
L layers, V target vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nlp_lstm.nn.attention import Attention
from nlp_lstm.nn.cell import lstm_step
from nlp_lstm.nn.encoder import INITS, init_recurrent_weights
from nlp_lstm.nn.packing import Packing


class Memory(NamedTuple):
    """The source as the decoder reads it, computed once per source (``prepare_memory``)."""

    values: torch.Tensor  # (B, S, M) encoder outputs
    keys: torch.Tensor  # (B, S, A) attention keys (the values themselves for luong_dot)

    def select(self, index: torch.Tensor) -> Memory:
        """Rows ``index`` (N,) -> a Memory of N rows."""
        values = self.values.index_select(0, index)  # (N, S, M)
        keys = values if self.keys is self.values else self.keys.index_select(0, index)
        return Memory(values, keys)


class DecoderState(NamedTuple):
    """What the decoder carries from one step to the next."""

    h: torch.Tensor  # (L, B, H)
    c: torch.Tensor  # (L, B, H)
    feed: torch.Tensor  # (B, H) the previous attentional vector h~ (zeros before the first step)

    def select(self, index: torch.Tensor) -> DecoderState:
        """Rows ``index`` (N,) -> a state of N rows (a beam search's reordering)."""
        return DecoderState(self.h.index_select(1, index), self.c.index_select(1, index),
                            self.feed.index_select(0, index))


Layer = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (w_x, w_hh, bias) of one layer


class AttentionDecoder(nn.Module):
    """LSTM decoder with attention, input feeding and an optionally tied output layer.

    Args:
        vocab_size: V.
        embedding_dim: E.
        hidden_size: H, also the size of the attentional vector.
        memory_size: M, the encoder's output size.
        num_layers: L.
        attention: ``bahdanau``, ``luong_dot``, ``luong_general`` or ``luong_concat``.
        input_feeding: feed h~_{t-1} to the first layer at step t (Luong et al. 2015, 3.3).
        dropout: on the embeddings, between layers and on h~, in training only.
        tie_embeddings: the output layer's weight is the target embedding (Press & Wolf 2017),
            after a learned (H -> E) projection when E != H.
        padding_idx: the padding token, whose embedding stays zero.
        init: ``"xavier"`` or ``"torch"``, the encoder's rules (``init_recurrent_weights``).
            Embeddings are N(0, 1/E), so an embedding vector has about unit norm.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        memory_size: int,
        num_layers: int = 1,
        *,
        attention: str = "luong_general",
        input_feeding: bool = True,
        dropout: float = 0.0,
        tie_embeddings: bool = False,
        padding_idx: int | None = None,
        init: str = "xavier",
    ) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim),
                            ("hidden_size", hidden_size), ("memory_size", memory_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.memory_size = memory_size
        self.num_layers = num_layers
        self.input_feeding = bool(input_feeding)
        self.dropout = float(dropout)
        self.tie_embeddings = bool(tie_embeddings)
        self.init = init

        E, H = embedding_dim, hidden_size
        self.embedding = nn.Embedding(vocab_size, E, padding_idx=padding_idx)
        self.attention = Attention(attention, H, memory_size)
        self.bahdanau = attention == "bahdanau"
        first_input = E + (memory_size if self.bahdanau else 0) + (H if self.input_feeding else 0)
        for k in range(num_layers):
            shapes = {"weight_ih": (4 * H, first_input if k == 0 else H), "weight_hh": (4 * H, H),
                      "bias_ih": (4 * H,), "bias_hh": (4 * H,)}
            for name, shape in shapes.items():
                self.register_parameter(f"{name}_l{k}", nn.Parameter(torch.empty(shape)))
        self.combine = nn.Linear(memory_size + H, H, bias=False)  # W_c
        if self.tie_embeddings:
            self.out_proj = nn.Linear(H, E, bias=False) if E != H else None  # P
            self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        else:
            self.out = nn.Linear(H, vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            nn.init.normal_(self.embedding.weight, std=self.embedding_dim**-0.5)
            if self.embedding.padding_idx is not None:
                self.embedding.weight[self.embedding.padding_idx].zero_()
            for k in range(self.num_layers):
                init_recurrent_weights(*(getattr(self, f"{n}_l{k}") for n in
                                         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
                                       init=self.init)

    # ------------------------------------------------------------------ pieces
    def prepare_memory(self, outputs: torch.Tensor) -> Memory:
        """Encoder outputs (B, S, M) -> Memory, with the attention keys computed once."""
        return Memory(outputs, self.attention.keys(outputs))

    def initial_state(self, h: torch.Tensor, c: torch.Tensor) -> DecoderState:
        """(h_0, c_0), each (L, B, H), e.g. from a ``Bridge`` -> the state before step 1."""
        expected = (self.num_layers, h.size(1) if h.dim() == 3 else -1, self.hidden_size)
        for name, s in (("h_0", h), ("c_0", c)):
            if tuple(s.shape) != expected:
                raise ValueError(f"{name} has shape {tuple(s.shape)}, expected {expected}")
        return DecoderState(h, c, h.new_zeros(h.size(1), self.hidden_size))

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """The output layer: h~ (..., H) -> logits (..., V)."""
        if not self.tie_embeddings:
            return self.out(attentional)
        x = attentional if self.out_proj is None else self.out_proj(attentional)  # (..., E)
        return F.linear(x, self.embedding.weight, self.out_bias)

    def _embedding_gates(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (...) -> the embeddings' share of the first layer's gates (..., 4H), with both
        biases of the first layer."""
        embedded = F.dropout(self.embedding(tokens), self.dropout, self.training)  # (..., E)
        bias = self.bias_ih_l0 + self.bias_hh_l0  # (4H,)
        return F.linear(embedded, self.weight_ih_l0[:, : self.embedding_dim], bias)  # (..., 4H)

    def _layers(self) -> list[Layer]:
        """Per layer (w_x, w_hh, b_ih + b_hh); layer 0's w_x holds only the input columns after
        the embedding (context, feed), possibly none, and its bias is in the embedding gates."""
        layers = []
        for k in range(self.num_layers):
            w_ih = getattr(self, f"weight_ih_l{k}")
            if k == 0:
                w_ih = w_ih[:, self.embedding_dim :]  # (4H, first_input - E), a view
            bias = getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}")  # (4H,)
            layers.append((w_ih, getattr(self, f"weight_hh_l{k}"), bias))
        return layers

    def _advance(
        self, gates_emb: torch.Tensor, state: DecoderState, memory: Memory, mask: torch.Tensor,
        layers: list[Layer],
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One step up to the attentional vector.

        Args:
            gates_emb: (B, 4H) ``_embedding_gates`` of this step's input tokens.

        Returns:
            h~ (B, H) after dropout, the new state, attention weights (B, S).
        """
        h_prev, c_prev, feed = state
        inputs = []  # the first layer's inputs after the embedding, in column order
        if self.bahdanau:
            context, weights = self.attention(h_prev[-1], memory.values, memory.keys, mask)
            inputs.append(context)  # (B, M)
        if self.input_feeding:
            inputs.append(feed)  # (B, H)
        hs, cs = [], []
        x = torch.cat(inputs, dim=1) if inputs else None  # (B, M + H), (B, M), (B, H) or None
        for k, (w_x, w_hh, bias) in enumerate(layers):
            if k == 0:
                gates_x = gates_emb if x is None else torch.addmm(gates_emb, x, w_x.t())
            else:
                x = F.dropout(x, self.dropout, self.training)
                gates_x = torch.addmm(bias, x, w_x.t())  # (B, 4H)
            h, c = lstm_step(gates_x, h_prev[k], c_prev[k], w_hh)  # (B, H) each
            hs.append(h)
            cs.append(c)
            x = h
        if not self.bahdanau:
            context, weights = self.attention(h, memory.values, memory.keys, mask)  # (B, M)
        attentional = torch.tanh(self.combine(torch.cat([context, h], dim=1)))  # (B, H)
        attentional = F.dropout(attentional, self.dropout, self.training)
        return attentional, DecoderState(torch.stack(hs), torch.stack(cs), attentional), weights

    def _check(
        self, tokens: torch.Tensor, dims: int, state: DecoderState, memory: Memory,
        mask: torch.Tensor,
    ) -> None:
        if tokens.dim() != dims or tokens.dtype.is_floating_point:
            raise ValueError(f"tokens must be {dims}-D integer ids, got shape "
                             f"{tuple(tokens.shape)} and dtype {tokens.dtype}")
        B = tokens.size(0)
        expected = (self.num_layers, B, self.hidden_size)
        if tuple(state.h.shape) != expected or tuple(state.c.shape) != expected:
            raise ValueError(f"state (h, c) must be {expected} each, got {tuple(state.h.shape)} "
                             f"and {tuple(state.c.shape)}")
        values = memory.values
        if values.dim() != 3 or values.size(0) != B or values.size(2) != self.memory_size:
            raise ValueError(f"memory must be (B={B}, S, M={self.memory_size}), got "
                             f"{tuple(values.shape)}")
        if tuple(mask.shape) != tuple(values.shape[:2]) or mask.dtype != torch.bool:
            raise ValueError(f"memory_mask must be bool {tuple(values.shape[:2])}, got "
                             f"{mask.dtype} {tuple(mask.shape)}")

    # ------------------------------------------------------------------- public
    def step(
        self, token: torch.Tensor, state: DecoderState, memory: Memory, memory_mask: torch.Tensor
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoding step, a pure function of its inputs.

        Args:
            token: (B,) the previous target token (<bos> at the first step).
            state: the state after the previous step (``initial_state`` before the first).
            memory: from ``prepare_memory``.
            memory_mask: (B, S) bool, True at real source positions.

        Returns:
            logits (B, V), the new state, attention weights (B, S).
        """
        self._check(token, 1, state, memory, memory_mask)
        gates_emb = self._embedding_gates(token)  # (B, 4H)
        attentional, state, weights = self._advance(gates_emb, state, memory, memory_mask,
                                                    self._layers())
        return self.logits(attentional), state, weights

    def attentional(
        self, tokens: torch.Tensor, state: DecoderState, memory: Memory,
        memory_mask: torch.Tensor, lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing up to the output layer: the attentional vectors h~.

        Args:
            tokens: (B, T), <bos> first.
            state, memory, memory_mask: as for ``step``.
            lengths: (B,) in [1, T], the real tokens of each row; None means all T. Steps past
                a row's length are not computed: the rows run sorted by length, and each step
                only the rows still running (``packing.py``, as in the encoder).

        Returns:
            (B, T, H), zero after each row's length; ``logits`` of it are ``forward``'s.
        """
        self._check(tokens, 2, state, memory, memory_mask)
        B, T = tokens.shape
        packing = Packing(_check_lengths(lengths, B, T, tokens.device), B, T, tokens.device)
        rows = packing.pack(tokens.unsqueeze(2)).squeeze(1)  # (N,) time-major, longest first
        gates = self._embedding_gates(rows)  # (N, 4H), every step's embedding share at once
        if not packing.full:
            order = packing.sorted_indices  # (B,)
            state = state.select(order)
            memory, memory_mask = memory.select(order), memory_mask.index_select(0, order)
        layers = self._layers()
        outputs = []
        for gates_t in gates.split(packing.batch_sizes):  # T x (n, 4H), n rows still running
            n = gates_t.size(0)
            state = DecoderState(state.h[:, :n], state.c[:, :n], state.feed[:n])  # views
            attentional, state, _ = self._advance(
                gates_t, state, Memory(memory.values[:n], memory.keys[:n]), memory_mask[:n],
                layers)
            outputs.append(attentional)
        return packing.unpack(torch.cat(outputs))  # (B, T, H)

    def forward(
        self, tokens: torch.Tensor, state: DecoderState, memory: Memory,
        memory_mask: torch.Tensor, lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing: tokens (B, T), <bos> first -> logits (B, T, V), the predictions of
        the next tokens; equal to ``step`` applied T times. With ``lengths`` (B,), steps past a
        row's length are skipped (see ``attentional``) and their logits are meaningless."""
        return self.logits(self.attentional(tokens, state, memory, memory_mask, lengths))


def _check_lengths(
    lengths: torch.Tensor | None, batch: int, steps: int, device: torch.device
) -> torch.Tensor | None:
    """lengths (B,) in [1, T] -> int64 on ``device``, or None when None or all T."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.numel() != batch or lengths.dtype.is_floating_point:
        raise ValueError(f"lengths must be 1-D integers of size B={batch}, got "
                         f"{tuple(lengths.shape)} of dtype {lengths.dtype}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > steps:
        raise ValueError(f"lengths must lie in [1, T={steps}], got min {lo} and max {hi}")
    return None if lo == steps else lengths.to(device=device, dtype=torch.int64)
