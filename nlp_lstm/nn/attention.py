"""Attention of a decoder state over encoder outputs (Bahdanau et al. 2015; Luong et al. 2015).

A query q (a decoder hidden state) scores every source position s by comparing q with a key k_s
computed from the encoder output (the memory) m_s:

    bahdanau, luong_concat   score = v^T tanh(W_q q + b_q + k_s),  k_s = W_k m_s   (additive)
    luong_dot                score = q^T k_s,                       k_s = m_s      (Q = M)
    luong_general            score = q^T k_s,                       k_s = W_a m_s

    weights = softmax(score) over the real source positions,  context = sum_s weights_s m_s

``bahdanau`` and ``luong_concat`` score alike (Luong's ``W_a [q; m_s]`` is ``W_q q + W_k m_s``);
they differ in which decoder state is the query: the previous one, before the recurrence, for
Bahdanau, the current one for Luong (``decoder.py``).

Keys do not depend on the query, so the decoder computes them once per source (``keys``) and
each step costs one small batched product. Padded positions score -inf, so their weight is
exactly 0 and the weights of the real positions sum to 1; every row needs one real position.

Legend: B batch, S source length, Q query size, M memory size, A key size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ATTENTIONS = ("bahdanau", "luong_dot", "luong_general", "luong_concat")
ADDITIVE = ("bahdanau", "luong_concat")


class Attention(nn.Module):
    """Scores, weights and context of one query per row over that row's memory.

    Args:
        kind: one of ``ATTENTIONS``.
        query_size: Q.
        memory_size: M; ``luong_dot`` needs M = Q.
        attention_size: A of the additive kinds (default Q); the dot kinds have A = Q.
    """

    def __init__(
        self, kind: str, query_size: int, memory_size: int, attention_size: int | None = None
    ) -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {kind!r}")
        if kind == "luong_dot" and query_size != memory_size:
            raise ValueError(
                f"attention 'luong_dot' needs query size = memory size, got {query_size} and "
                f"{memory_size}; use 'luong_general' to compare vectors of different sizes"
            )
        if attention_size is not None and kind not in ADDITIVE:
            raise ValueError(f"attention_size applies to {ADDITIVE} only, got kind {kind!r}")
        self.kind = kind
        self.query_size = query_size
        self.memory_size = memory_size
        if kind in ADDITIVE:
            A = attention_size or query_size
            self.key_proj = nn.Linear(memory_size, A, bias=False)  # W_k
            self.query_proj = nn.Linear(query_size, A)  # W_q, b_q
            self.v = nn.Linear(A, 1, bias=False)
        elif kind == "luong_general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)  # W_a

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, S, M) -> keys (B, S, A), once per source."""
        if self.kind == "luong_dot":
            return memory
        return self.key_proj(memory)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend.

        Args:
            query: (B, Q).
            memory: (B, S, M) the encoder outputs.
            keys: (B, S, A) from ``keys(memory)``.
            mask: (B, S) bool, True at real source positions.

        Returns:
            context (B, M) and weights (B, S), exactly 0 at padding.
        """
        if self.kind in ADDITIVE:
            hidden = torch.tanh(keys + self.query_proj(query).unsqueeze(1))  # (B, S, A)
            scores = F.linear(hidden, self.v.weight).squeeze(2)  # (B, S)
        else:
            scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (B, S)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=1)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, M)
        return context, weights
