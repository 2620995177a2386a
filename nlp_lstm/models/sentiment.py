"""Bidirectional LSTM sentiment classifier.

    tokens (B, T) -> embedding (B, T, E) -> LSTMEncoder (B, T, D*H) -> pooling (B, D*H)
    -> dropout -> linear (B, C)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nlp_lstm.models.classifier import OptimizerFactory, SchedulerFactory, TextClassifier
from nlp_lstm.nn import LSTMEncoder, Pooling, lengths_to_mask


class SentimentClassifier(TextClassifier):
    """Args beyond ``TextClassifier``'s:
        embedding_dim: E.
        hidden_size: H per direction.
        num_layers: L.
        bidirectional: D = 2 if True.
        dropout: on embeddings, between LSTM layers and before the head.
        pooling: ``last``, ``mean``, ``max`` or ``attention``.
        cell, layer_norm, weight_drop, impl, init: passed to ``LSTMEncoder`` (``cell="gru"``
            for the LSTM-vs-GRU comparison).
    """

    def __init__(
        self,
        tokenizer: str,
        labels: Sequence[str],
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
        pooling: str = "max",
        cell: str = "lstm",
        layer_norm: bool = False,
        weight_drop: float = 0.0,
        impl: str = "auto",
        init: str = "xavier",
        max_length: int = 256,
        class_weights: Sequence[float] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(tokenizer, labels, max_length, class_weights, optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.embedding = nn.Embedding(self.tokenizer.vocab_size, embedding_dim,
                                      padding_idx=self.tokenizer.pad_id)
        self.encoder = LSTMEncoder(embedding_dim, hidden_size, num_layers,
                                   bidirectional=bidirectional, dropout=dropout, cell=cell,
                                   layer_norm=layer_norm, weight_drop=weight_drop, init=init,
                                   impl=impl)
        self.pooling = Pooling(pooling, self.encoder.output_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size, len(self.labels))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> logits (B, C)."""
        embedded = self.dropout(self.embedding(tokens))  # (B, T, E)
        outputs, state = self.encoder(embedded, lengths)  # (B, T, D*H), state
        h_n = state[0] if self.encoder.cell == "lstm" else state  # (L*D, B, H)
        D = self.encoder.num_directions
        last = h_n[-D:].transpose(0, 1).reshape(len(tokens), -1)  # (B, D*H), last layer
        pooled = self.pooling(outputs, lengths_to_mask(lengths.to(tokens.device), tokens.size(1)),
                              last)  # (B, D*H)
        return self.head(self.dropout(pooled))  # (B, C)
