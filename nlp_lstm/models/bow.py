"""Bag-of-words baseline: the mean of word embeddings through an MLP. Blind to word order by
construction, it measures how much of a data set can be solved without reading order.

    tokens (B, T) -> embedding (B, T, E) -> masked mean (B, E) -> MLP (B, C)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nlp_lstm.models.classifier import OptimizerFactory, SchedulerFactory, TextClassifier
from nlp_lstm.nn import Pooling, lengths_to_mask


class BagOfWordsClassifier(TextClassifier):
    """Args beyond ``TextClassifier``'s: embedding_dim E, hidden_size of the MLP, dropout."""

    def __init__(
        self,
        tokenizer: str,
        labels: Sequence[str],
        embedding_dim: int = 128,
        hidden_size: int = 256,
        dropout: float = 0.3,
        max_length: int = 256,
        class_weights: Sequence[float] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(tokenizer, labels, max_length, class_weights, optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.embedding = nn.Embedding(self.tokenizer.vocab_size, embedding_dim,
                                      padding_idx=self.tokenizer.pad_id)
        self.pooling = Pooling("mean", embedding_dim)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(embedding_dim, hidden_size), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(hidden_size, len(self.labels)),
        )

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> logits (B, C)."""
        mask = lengths_to_mask(lengths.to(tokens.device), tokens.size(1))  # (B, T)
        mean = self.pooling(self.embedding(tokens), mask)  # (B, E)
        return self.mlp(mean)  # (B, C)
