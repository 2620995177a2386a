"""The language model's ONNX graphs (``nlp_lstm.deploy.export`` writes them).

Legend: B batch, P prompt length, L layers, H hidden, W attention window, V vocabulary.

- ``prompt``: tokens (B, P) -> logits (B, V) of the next token, h, c (L, B, H) [, memory (B, W,
  H), memory_mask (B, W) with window attention];
- ``step``: token (B,), that state -> logits (B, V), the next state.

Logits, not log-probabilities: the repetition penalty acts on the sign of the raw logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nlp_lstm.deploy.export import Export, Graph, special_ids
from nlp_lstm.generation.net import LMState


def _state_names(net: nn.Module) -> list[str]:
    """The LM state as flat graph tensors: h, c (LSTM), memory, memory_mask (window)."""
    return ["h"] + (["c"] if net.cell == "lstm" else []) + (
        ["memory", "memory_mask"] if net.attend is not None else [])


def _flat(state: Any, names: list[str]) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(state, name) for name in names)


class _Prompt(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.names = net, _state_names(net)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, state = self.net.prompt(tokens)  # (B, V)
        return (logits, *_flat(state, self.names))


class _Step(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.names = net, _state_names(net)

    def forward(self, token: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, new = self.net.step(token, LMState(**dict(zip(self.names, state, strict=True))))
        return (logits, *_flat(new, self.names))


def build(model: Any) -> Export:
    net = model.net
    if net.adaptive or model.reverse:
        what = "an adaptive softmax" if net.adaptive else "a backward (reverse) model"
        raise ValueError(f"this language model has {what}, which the ONNX export does not "
                         "cover: export a forward model with a full softmax, or a task "
                         "fine-tuned from this one")
    names = _state_names(net)
    tokens = torch.tensor([[5, 6, 7], [8, 9, 10]]).clamp(max=model.tokenizer.vocab_size - 1)
    batch = {"h": 1, "c": 1, "memory": 0, "memory_mask": 0}  # the batch axis of each
    prompt = Graph("prompt", _Prompt(net), (tokens,), ["tokens"], ["logits", *names],
                   {"tokens": {0: "B", 1: "P"}, "logits": {0: "B"}}
                   | {n: {batch[n]: "B"} for n in names})
    with torch.no_grad():
        _, *state = prompt.module(tokens)
    outputs = [f"{n}_out" for n in names]
    step = Graph("step", _Step(net), (tokens[:, 0], *state), ["token", *names],
                 ["logits", *outputs],
                 {"token": {0: "B"}, "logits": {0: "B"}} | {n: {batch[n]: "B"} for n in names}
                 | {o: {batch[n]: "B"} for n, o in zip(names, outputs, strict=True)})
    info = {"separator": model.separator, "state": names, "cell": net.cell,
            "attention": net.attention, "num_layers": net.num_layers,
            "hidden_size": net.hidden_size,
            "attention_window": net.attend.window if net.attend is not None else None}
    info["special_ids"] = special_ids(model.tokenizer)
    return Export([prompt, step], {"tokenizer": model.tokenizer}, info)
