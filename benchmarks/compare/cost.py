"""Section 2: forward+backward time and peak memory of one layer against the sequence length, at a
constant number of tokens per batch (B = tokens / T), at equal parameters.

The Transformer layer has width d (non-causal, full attention over the sequence as in
classification, no padding); the LSTM and GRU layers have the widths whose parameter count
matches it (``params.equal_param_widths``). Inputs are (B, T, width) random tensors; one step is
the forward and the gradients of the input and every parameter (``torch.autograd.grad``).

Time: every (kind, length) runs once per round, interleaved, after warm-up rounds (drifts in
the machine's load hit all alike); the median is reported. Peak memory: the most bytes held at
once during one step above what was held before it, after a warm-up step: on CUDA the caching
allocator's ``max_memory_allocated``; on CPU the profiler's allocation trace (every allocation
and free of PyTorch's CPU allocator, ``profile_memory=True``), as in ``benchmarks.encoder``;
scratch memory that oneDNN or OpenMP allocate themselves is not in it.

The fitted exponent: least squares of log(time) on log(T). At constant tokens per batch the
batch's time goes as T^alpha with alpha ~ 0 for a cost linear in the tokens (a recurrence, a
feed-forward block) and alpha -> 1 where attention's T^2 per sequence dominates; per sequence
(B times fewer sequences) the time goes as T^(alpha + 1).

Legend: B batch, T time, d width.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from benchmarks.compare.params import KINDS, count, equal_param_widths
from benchmarks.encoder import peak_memory, sync
from nlp_lstm.nn import LSTMEncoder, TransformerEncoder


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least squares of log y = a log x + b over the points; returns (a, b). Needs two or more
    distinct x and positive values."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"need two or more (x, y) pairs, got {len(xs)} x and {len(ys)} y")
    if min(xs) <= 0 or min(ys) <= 0:
        raise ValueError("x and y must be positive to fit on a log-log scale")
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((x - mx) ** 2 for x in lx)
    if sxx == 0:
        raise ValueError("need two or more distinct x values")
    a = sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / sxx
    return a, my - a * mx


def encoder(kind: str, width: int, max_length: int) -> nn.Module:
    """A one-layer encoder of ``kind`` (input size = width), without dropout."""
    if kind == "transformer":
        return TransformerEncoder(width, width, 1, max_length=max_length)
    return LSTMEncoder(width, width, 1, cell=kind)


def make_step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """Forward and the gradients of x and every parameter."""
    targets = [x, *module.parameters()]

    def step() -> None:
        out, _ = module(x)  # (B, T, d)
        torch.autograd.grad(out.sum(), targets)

    return step


def measure(width: int, lengths: Sequence[int], tokens: int, runs: int, warmup: int,
            device: torch.device, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Section 2's measurements (see the module docstring)."""
    for T in lengths:
        if tokens % T:
            raise ValueError(f"tokens per batch {tokens} is not a multiple of the length {T}")
    widths = equal_param_widths("transformer", width)
    torch.manual_seed(0)
    modules = {kind: encoder(kind, widths[kind], max(lengths)).to(device) for kind in KINDS}
    steps: dict[tuple[str, int], Callable[[], None]] = {}
    for T in lengths:
        for kind in KINDS:
            x = torch.randn(tokens // T, T, widths[kind], device=device, requires_grad=True)
            steps[kind, T] = make_step(modules[kind], x)
    times: dict[tuple[str, int], list[float]] = {key: [] for key in steps}
    for round_ in range(warmup + runs):
        for key, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            if round_ >= warmup:
                times[key].append(time.perf_counter() - start)
        log(f"  cost: round {round_ + 1}/{warmup + runs} done")
    memory = {key: peak_memory(step, device) for key, step in steps.items()}  # after timing
    rows = []
    for (kind, T), samples in times.items():
        rows.append({"kind": kind, "T": T, "B": tokens // T, "seconds": statistics.median(samples),
                     "memory_bytes": memory[kind, T]})
    fits = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        time_fit = fit_exponent([r["T"] for r in mine], [r["seconds"] for r in mine])[0]
        memory_fit = (fit_exponent([r["T"] for r in mine], [r["memory_bytes"] for r in mine])[0]
                      if all(r["memory_bytes"] > 0 for r in mine) else None)
        fits[kind] = {"time_per_batch": time_fit, "time_per_sequence": time_fit + 1,
                      "memory_per_batch": memory_fit}
    return {"width": width, "widths": widths,
            "params": {kind: count(m) for kind, m in modules.items()},
            "tokens": tokens, "runs": runs, "warmup": warmup, "rows": rows, "fits": fits}
