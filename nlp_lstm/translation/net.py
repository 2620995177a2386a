"""The translation network: attention encoder-decoder on the shared LSTM encoder.

    src (B, S) -> embedding (B, S, E) -> LSTMEncoder (B, S, M = D*H_enc), final state
               -> Bridge -> decoder state (L_dec, B, H)
    tgt_in (B, T) -> AttentionDecoder over the encoder outputs -> logits (B, T, V)

Decoding runs ``step`` on a ``Seq2SeqState`` (memory, mask and decoder state, row by row), so
the functions of ``nlp_lstm.nn.decoding`` drive it directly:

    state = net.encode(src, src_lengths)
    beam_search(net.step, state, reorder=Seq2SeqState.select, bos_id=..., eos_id=...,
                max_lengths=..., beam_size=5)

Training should skip padded target steps and compute the output layer, the largest matmul,
on the real target tokens only (a quarter to a third of a bucketed batch's positions are
padding; 0.75x the step time at Multi30k's shape, ``benchmarks/seq2seq_step.py``):

    mask = lengths_to_mask(tgt_lengths, T)  # (B, T)
    hidden = net.attentional(src, src_lengths, tgt_in, tgt_lengths)[mask]  # (N, H)
    loss = F.cross_entropy(net.decoder.logits(hidden), tgt_out[mask], label_smoothing=0.1)

Legend: B batch, S source length, T target length, E embedding, H hidden, M memory size,
L layers, D directions, V vocabulary.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nlp_lstm.nn.bridge import Bridge
from nlp_lstm.nn.decoder import AttentionDecoder, DecoderState, Memory
from nlp_lstm.nn.encoder import build_encoder
from nlp_lstm.nn.masking import lengths_to_mask


def _check_ids(name: str, ids: torch.Tensor) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype.is_floating_point:
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
        dtype = ids.dtype if isinstance(ids, torch.Tensor) else None
        raise ValueError(f"{name} must be 2-D integer ids, got {shape} of dtype {dtype}")


class Seq2SeqState(NamedTuple):
    """Everything one decoding step reads, row by row."""

    memory: Memory  # values (B, S, M), keys (B, S, A)
    mask: torch.Tensor  # (B, S) bool, True at real source tokens
    decoder: DecoderState  # h, c (L, B, H), feed (B, H)

    def select(self, index: torch.Tensor) -> Seq2SeqState:
        """Rows ``index`` (N,) -> a state of N rows: a decoding ``reorder``."""
        return Seq2SeqState(self.memory.select(index), self.mask.index_select(0, index),
                            self.decoder.select(index))


class Seq2Seq(nn.Module):
    """Attention encoder-decoder, built from plain values.

    Args:
        src_vocab_size, tgt_vocab_size: V of each side.
        pad_id: the padding token of both vocabularies (its embeddings stay zero).
        embedding_dim: E, source and target embeddings.
        hidden_size: H of the decoder (and of the attentional vector).
        encoder: ``LSTMEncoder`` keyword arguments, e.g. ``{"num_layers": 2, "bidirectional":
            True, "cell": "lstm", "impl": "auto"}``. Defaults: 2 layers, bidirectional, dropout
            ``dropout``, init ``init`` and hidden_size H / D, so that the memory has size H
            (OpenNMT-py's convention; set ``hidden_size`` here to choose another). A GRU
            encoder (``"cell": "gru"``) has no cell state: the bridge projects c_0 from its h_n.
        decoder_layers: L_dec.
        attention: ``bahdanau``, ``luong_dot``, ``luong_general`` or ``luong_concat``.
        input_feeding: feed the previous attentional vector to the decoder (Luong et al. 2015).
        bridge: ``project`` (learned, from every encoder layer and direction) or ``none``
            (zeros), see ``nlp_lstm.nn.bridge``.
        dropout: on the source and target embeddings, between decoder layers and on the
            attentional vector.
        tie_embeddings: the output layer shares the target embedding.
        share_embeddings: source and target share one embedding (a joint vocabulary; needs
            equal vocabulary sizes).
        init: ``xavier`` or ``torch`` for the recurrent weights of both sides.
        param_init: when given, every parameter is drawn from U(-param_init, param_init) after
            the rules above (OpenNMT-py's ``param_init``; biases too, so no forget-gate bias);
            padding embeddings stay zero.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        *,
        pad_id: int = 0,
        embedding_dim: int = 256,
        hidden_size: int = 512,
        encoder: dict[str, Any] | None = None,
        decoder_layers: int = 2,
        attention: str = "luong_general",
        input_feeding: bool = True,
        bridge: str = "project",
        dropout: float = 0.3,
        tie_embeddings: bool = False,
        share_embeddings: bool = False,
        init: str = "xavier",
        param_init: float | None = None,
    ) -> None:
        super().__init__()
        if param_init is not None and not param_init > 0:
            raise ValueError(f"param_init must be positive (or null), got {param_init!r}")
        encoder = dict(encoder or {})
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"share_embeddings needs one vocabulary, got sizes "
                             f"{src_vocab_size} and {tgt_vocab_size}")
        settings = {"num_layers": 2, "bidirectional": True, "dropout": dropout, "init": init}
        settings |= encoder
        directions = 2 if settings["bidirectional"] else 1
        if "hidden_size" not in settings:
            if hidden_size % directions:
                raise ValueError(f"hidden_size={hidden_size} must split over {directions} "
                                 "directions, or set encoder.hidden_size")
            settings["hidden_size"] = hidden_size // directions
        self.pad_id = pad_id
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_dim, padding_idx=pad_id)
        # Recurrent only: the bridge starts the decoder from the encoder's final states.
        self.encoder = build_encoder(embedding_dim, settings, kinds=("recurrent",))
        self.decoder = AttentionDecoder(
            tgt_vocab_size, embedding_dim, hidden_size, self.encoder.output_size, decoder_layers,
            attention=attention, input_feeding=input_feeding, dropout=dropout,
            tie_embeddings=tie_embeddings, padding_idx=pad_id, init=init)
        self.bridge = Bridge(bridge, self.encoder.num_layers * self.encoder.num_directions,
                             self.encoder.hidden_size, decoder_layers, hidden_size)
        self.dropout = float(dropout)
        with torch.no_grad():
            nn.init.normal_(self.src_embedding.weight, std=embedding_dim**-0.5)
            self.src_embedding.weight[pad_id].zero_()
        if share_embeddings:
            self.src_embedding.weight = self.decoder.embedding.weight
        if param_init is not None:
            with torch.no_grad():
                for p in self.parameters():
                    p.uniform_(-param_init, param_init)
                for embedding in (self.src_embedding, self.decoder.embedding):
                    embedding.weight[pad_id].zero_()

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Seq2SeqState:
        """src (B, S), src_lengths (B,) in [1, S] -> the state before the first decoding step."""
        _check_ids("src", src)
        embedded = F.dropout(self.src_embedding(src), self.dropout, self.training)  # (B, S, E)
        outputs, final = self.encoder(embedded, src_lengths)  # (B, S, M), final state
        lengths = torch.as_tensor(src_lengths).to(src.device)
        mask = lengths_to_mask(lengths, src.size(1))  # (B, S)
        h_0, c_0 = self.bridge(final)  # (L_dec, B, H) each
        return Seq2SeqState(self.decoder.prepare_memory(outputs), mask,
                            self.decoder.initial_state(h_0, c_0))

    def attentional(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
        tgt_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing up to the output layer: (B, T, H), zero past each target length
        (steps past it are not computed)."""
        _check_ids("src", src)
        _check_ids("tgt_in", tgt_in)
        if tgt_in.size(0) != src.size(0):
            raise ValueError(f"tgt_in must be (B={src.size(0)}, T), got {tuple(tgt_in.shape)}")
        memory, mask, state = self.encode(src, src_lengths)
        return self.decoder.attentional(tgt_in, state, memory, mask, tgt_lengths)

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
        tgt_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing: src (B, S), src_lengths (B,), tgt_in (B, T) starting with <bos>,
        tgt_lengths (B,) or None for all T -> logits (B, T, V) of the next target tokens
        (meaningless past each target length)."""
        return self.decoder.logits(self.attentional(src, src_lengths, tgt_in, tgt_lengths))

    def step(
        self, tokens: torch.Tensor, state: Seq2SeqState
    ) -> tuple[torch.Tensor, Seq2SeqState, torch.Tensor]:
        """One decoding step, pure: tokens (N,), state of N rows -> logits (N, V), the next
        state, attention weights (N, S)."""
        logits, decoder_state, weights = self.decoder.step(tokens, state.decoder, state.memory,
                                                           state.mask)
        return logits, state._replace(decoder=decoder_state), weights
