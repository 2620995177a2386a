"""The translation model's ONNX graphs (``nlp_lstm.deploy.export`` writes them).

Legend: B batch, S source length, L layers, H hidden, M memory, A key size, V vocabulary.

- ``encoder``: src (B, S), src_lengths (B,) -> memory (B, S, M), keys (B, S, A), mask (B, S)
  bool, and the decoder's initial state h, c (L, B, H), feed (B, H);
- ``decoder`` (one step): token (B,), h, c, feed, memory, keys, mask -> log_probs (B, V), h, c,
  feed, attention (B, S).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nlp_lstm.deploy.export import Export, Graph, special_ids
from nlp_lstm.nn.decoder import DecoderState, Memory


class _Encode(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        memory, mask, state = self.net.encode(src, src_lengths)
        return memory.values, memory.keys, mask, state.h, state.c, state.feed


class _DecodeStep(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor, feed: torch.Tensor,
                memory: torch.Tensor, keys: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, state, weights = self.net.decoder.step(token, DecoderState(h, c, feed),
                                                       Memory(memory, keys), mask)
        # decoding.py's rule: log-probabilities in at least float32.
        return logits.float().log_softmax(-1), state.h, state.c, state.feed, weights


def build(model: Any) -> Export:
    net = model.net
    src = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]]).clamp(
        max=model.tokenizer.vocab_size - 1)
    src_lengths = torch.tensor([5, 3])
    with torch.no_grad():
        memory, mask, state = net.encode(src, src_lengths)
    encoder = Graph(
        "encoder", _Encode(net), (src, src_lengths), ["src", "src_lengths"],
        ["memory", "keys", "mask", "h", "c", "feed"],
        {"src": {0: "B", 1: "S"}, "src_lengths": {0: "B"}, "memory": {0: "B", 1: "S"},
         "keys": {0: "B", 1: "S"}, "mask": {0: "B", 1: "S"}, "h": {1: "B"}, "c": {1: "B"},
         "feed": {0: "B"}})
    token = torch.tensor([model.target_tokenizer.bos_id] * 2)
    decoder = Graph(
        "decoder", _DecodeStep(net),
        (token, state.h, state.c, state.feed, memory.values, memory.keys, mask),
        ["token", "h", "c", "feed", "memory", "keys", "mask"],
        ["log_probs", "h_out", "c_out", "feed_out", "attention"],
        {"token": {0: "B"}, "h": {1: "B"}, "c": {1: "B"}, "feed": {0: "B"},
         "memory": {0: "B", 1: "S"}, "keys": {0: "B", 1: "S"}, "mask": {0: "B", 1: "S"},
         "log_probs": {0: "B"}, "h_out": {1: "B"}, "c_out": {1: "B"}, "feed_out": {0: "B"},
         "attention": {0: "B", 1: "S"}})
    settings = {"beam_size": model.beam_size, "length_penalty": model.length_penalty,
                "max_length_ratio": model.max_length_ratio,
                "max_length_offset": model.max_length_offset}
    fitted = {"tokenizer": model.tokenizer}
    if model.target_tokenizer is not model.tokenizer:  # else a joint vocabulary
        fitted["target_tokenizer"] = model.target_tokenizer
    return Export([encoder, decoder], fitted,
                  {"decoding": settings, "special_ids": special_ids(model.tokenizer)})
