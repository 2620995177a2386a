"""Section 1: parameters per layer, counted from our modules, and the widths that equalise them.

A layer of width w is what sits inside a stack of width w (its input has w features too):

- LSTM: ``LSTMEncoder(w, w, 1)``: 4 gates x (input + recurrent weights + 2 biases).
- GRU: ``LSTMEncoder(w, w, 1, cell="gru")``: 3 gates, the same layout.
- Transformer: one ``nn.TransformerEncoderLayer`` of ``TransformerEncoder(w, w, 1)`` (attention
  in/out projections, the feed-forward block of ``dim_feedforward`` = 4 w, two layer norms); the
  encoder's final layer norm (2 w) is left out as it is not per layer.

Every count comes from ``sum(p.numel())`` over the built module, never from a formula.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from nlp_lstm.nn import LSTMEncoder, TransformerEncoder

KINDS = ("lstm", "gru", "transformer")
NHEAD = 4  # the project's Transformer configs; widths of a Transformer are multiples of it


def count(module: nn.Module) -> int:
    """Parameters of a module, each shared Parameter once (``parameters()`` deduplicates)."""
    return sum(p.numel() for p in module.parameters())


def layer(kind: str, width: int, *, nhead: int = NHEAD, max_length: int = 16) -> nn.Module:
    """One layer of ``kind`` at ``width`` (input size = width), as our encoders build it."""
    if kind == "lstm":
        return LSTMEncoder(width, width, 1)
    if kind == "gru":
        return LSTMEncoder(width, width, 1, cell="gru")
    if kind == "transformer":
        return TransformerEncoder(width, width, 1, nhead=nhead, max_length=max_length).layers[0]
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def layer_params(kind: str, width: int) -> int:
    return count(layer(kind, width))


def width_step(kind: str) -> int:
    """Widths a kind can take: any for the recurrent ones, multiples of the heads otherwise."""
    return NHEAD if kind == "transformer" else 1


def solve_width(params_at: Callable[[int], int], target: int, step: int = 1) -> int:
    """The multiple of ``step`` whose parameter count is nearest ``target`` (the smaller one on
    a tie). ``params_at`` must increase with the width (every layer here is a polynomial with
    positive coefficients)."""
    if target < 1 or step < 1:
        raise ValueError(f"target and step must be positive, got {target} and {step}")
    hi = step
    while params_at(hi) < target:  # exponential search for an upper bound
        hi *= 2
    lo = step  # invariant: the smallest width reaching target lies in (lo - step, hi]
    if params_at(lo) >= target:
        return lo
    while hi - lo > step:  # params_at(lo) < target <= params_at(hi)
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            mid = lo + step
        if params_at(mid) < target:
            lo = mid
        else:
            hi = mid
    return lo if target - params_at(lo) <= params_at(hi) - target else hi


def equal_param_widths(reference: str, width: int) -> dict[str, int]:
    """For each kind, the width whose layer matches the parameters of ``reference`` at
    ``width`` (the reference keeps its own width)."""
    target = layer_params(reference, width)
    return {kind: width if kind == reference else
            solve_width(lambda w, k=kind: layer_params(k, w), target, width_step(kind))
            for kind in KINDS}


def table(widths: tuple[int, ...]) -> dict[str, Any]:
    """Section 1's measurements: counts at equal width, and equal-parameter widths both ways
    (LSTM and GRU widths matching a Transformer layer of d; Transformer widths matching an LSTM
    layer of d)."""
    equal_width = {str(d): {kind: layer_params(kind, d) for kind in KINDS} for d in widths}
    match_transformer = {}
    match_lstm = {}
    for d in widths:
        widths_t = equal_param_widths("transformer", d)
        match_transformer[str(d)] = {k: {"width": w, "params": layer_params(k, w)}
                                     for k, w in widths_t.items()}
        widths_l = equal_param_widths("lstm", d)
        match_lstm[str(d)] = {k: {"width": w, "params": layer_params(k, w)}
                              for k, w in widths_l.items()}
    return {"equal_width": equal_width, "match_transformer": match_transformer,
            "match_lstm": match_lstm}


def params_without(module: nn.Module, skip: Mapping[str, nn.Parameter]) -> int:
    """Parameters of ``module`` other than those in ``skip`` (e.g. an embedding shared by every
    model compared), each shared Parameter once."""
    skipped = {id(p) for p in skip.values()}
    return sum(p.numel() for p in module.parameters() if id(p) not in skipped)
