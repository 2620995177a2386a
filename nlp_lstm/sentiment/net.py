"""Sentiment networks: plain ``nn.Module``s, tensor in, tensor out.

    LSTMClassifierNet: tokens (B, T) -> embedding (B, T, E) -> LSTMEncoder (B, T, D*H), in one
        pass or chunk by chunk -> pooling (B, D*H), or (B, 3*D*H) concatenated -> dropout ->
        linear (B, C); or a TransformerEncoder (B, T, H) in place of the LSTM
        (``encoder.kind: transformer``)
    BagOfWordsNet: tokens (B, T) -> embedding (B, T, E) -> masked mean (B, E) -> MLP (B, C)

The bag of words is blind to word order by construction: it measures how much of a data set
can be solved without reading order.

Legend: B batch, T time, E embedding, H hidden, D directions, L layers, C classes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from nlp_lstm.nn import (
    LSTMEncoder,
    Pooling,
    TransformerEncoder,
    at_last_step,
    build_encoder,
    lengths_to_mask,
)
from nlp_lstm.nn.chunked import check_chunk_length, encode_in_chunks


class LSTMClassifierNet(nn.Module):
    """A (bidirectional) LSTM, GRU or Transformer text classifier.

    Args:
        vocab_size, num_classes, pad_id: from the tokenizer and the labels.
        embedding_dim: E.
        encoder: the encoder's settings (``build_encoder``): ``LSTMEncoder`` keyword arguments
            (hidden_size, num_layers, bidirectional, dropout between layers, cell, layer_norm,
            weight_drop, impl, init), or ``kind: transformer`` and ``TransformerEncoder``'s
            (hidden_size, num_layers, nhead, dim_feedforward, dropout, activation, positions,
            max_length, causal). ``last`` pooling takes the LSTM's final states, the
            Transformer's output at the last real token.
        pooling: ``last``, ``mean``, ``max``, ``attention`` or ``concat`` (last, max and mean).
        dropout: on the embeddings and before the head.
        chunk_length: read a long document through the LSTM this many steps at a time, the
            state carried across chunks (``nn.chunked``: exact, the same outputs as one pass);
            None: one pass.
    """

    def __init__(self, vocab_size: int, num_classes: int, pad_id: int, embedding_dim: int,
                 encoder: Mapping[str, object], pooling: str, dropout: float,
                 chunk_length: int | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.encoder = build_encoder(embedding_dim, encoder)
        if chunk_length is not None:
            check_chunk_length(chunk_length)
            if not isinstance(self.encoder, LSTMEncoder):
                raise ValueError(f"chunk_length={chunk_length} needs a recurrent encoder, got "
                                 f"{type(self.encoder).__name__}")
        self.chunk_length = chunk_length
        self.pooling = Pooling(pooling, self.encoder.output_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.pooling.output_size, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> logits (B, C)."""
        embedded = self.dropout(self.embedding(tokens))  # (B, T, E)
        if self.chunk_length is not None and isinstance(self.encoder, LSTMEncoder):
            # An export's NativeEncoder reads in one pass: the same outputs.
            outputs, state = encode_in_chunks(self.encoder, embedded, lengths,
                                              self.chunk_length)  # (B, T, D*H), state
        else:
            outputs, state = self.encoder(embedded, lengths)  # (B, T, D*H), state
        lengths = lengths.to(tokens.device)
        if isinstance(self.encoder, TransformerEncoder):
            last = at_last_step(outputs, lengths)  # (B, H)
        else:  # an LSTMEncoder, or its NativeEncoder in an export
            h_n = state[0] if self.encoder.cell == "lstm" else state  # (L*D, B, H)
            D = self.encoder.num_directions
            last = h_n[-D:].transpose(0, 1).reshape(tokens.size(0), -1)  # (B, D*H), last layer
        mask = lengths_to_mask(lengths, tokens.size(1))  # (B, T)
        pooled = self.pooling(outputs, mask, last)  # (B, D*H), or (B, 3*D*H) concatenated
        return self.head(self.dropout(pooled))  # (B, C)


class BagOfWordsNet(nn.Module):
    """Mean of word embeddings through an MLP with one hidden layer of ``hidden_size``."""

    def __init__(self, vocab_size: int, num_classes: int, pad_id: int, embedding_dim: int,
                 hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.pooling = Pooling("mean", embedding_dim)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(embedding_dim, hidden_size), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(hidden_size, num_classes),
        )

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> logits (B, C)."""
        mask = lengths_to_mask(lengths.to(tokens.device), tokens.size(1))  # (B, T)
        mean = self.pooling(self.embedding(tokens), mask)  # (B, E)
        return self.mlp(mean)  # (B, C)
