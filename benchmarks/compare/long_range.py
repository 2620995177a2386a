"""Section 3: a dependency d tokens back. Accuracy against d at equal parameters and equal
training steps.

The task (delayed recall): a sequence of T = d + PREFIX + 1 tokens, all noise (uniform over
``noise`` symbols) except one signal token (uniform over ``signals`` symbols, disjoint from the
noise) at position T - 1 - d, d steps before the last token. The label is that signal, read at
the end: the model must keep it for exactly d steps of noise. Chance is 1 / signals. The
signal never sits at position 0 (PREFIX noise tokens come first), so "remember the first token"
does not solve it; its distance from the end is the only thing that varies with d.

The models: ``LSTMClassifierNet`` (token embedding -> one encoder layer -> the state at the last
token -> linear), with a unidirectional LSTM or GRU (a reverse direction would start next to
the answer) or a one-layer Transformer encoder (every position attends to the whole
sequence; its output at the last token). The Transformer layer has the width of ``width``
and the LSTM and GRU the widths of equal parameters. The LSTM and GRU run twice: with the
project's default init (forget-gate bias 1.0 for the LSTM, zero for the GRU), and with chrono
gate biases (Tallec & Ollivier 2018, ``init="chrono"``, ``max_timescale`` = T), the known
remedy for dependencies longer than the default forget gate's reach (0.73^d). Each trains
``steps`` steps of AdamW on fresh batches (never the same example twice, so there is nothing
to overfit), warmup then cosine decay, gradients clipped to norm 1, then is scored on
``eval_size`` held-out sequences.

Legend: B batch, T time, d distance, K signal classes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.compare.params import KINDS, NHEAD, solve_width, width_step
from nlp_lstm.sentiment.net import LSTMClassifierNet
from nlp_lstm.training.optim import WarmupCosineLR

PREFIX = 7  # noise tokens before the earliest possible signal
PAD = 0


def vocabulary(signals: int, noise: int) -> tuple[range, range]:
    """Token ids: 0 padding (unused), then the signals, then the noise symbols."""
    return range(1, 1 + signals), range(1 + signals, 1 + signals + noise)


def make_batch(batch: int, distance: int, signals: int, noise: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens (B, T) with T = distance + PREFIX + 1, and labels (B,) in [0, signals): the
    signal at position T - 1 - distance, minus the first signal id."""
    if distance < 1:
        raise ValueError(f"distance must be a positive integer, got {distance!r}")
    sig, noi = vocabulary(signals, noise)
    T = distance + PREFIX + 1
    tokens = torch.randint(noi.start, noi.stop, (batch, T), generator=generator)  # (B, T)
    labels = torch.randint(0, signals, (batch,), generator=generator)  # (B,)
    tokens[:, T - 1 - distance] = labels + sig.start
    return tokens, labels


INITS = {"lstm": ("default", "chrono"), "gru": ("default", "chrono"),
         "transformer": ("default",)}  # the runs per kind


def encoder_settings(kind: str, width: int, max_length: int,
                     init: str = "default") -> dict[str, Any]:
    if kind == "transformer":
        return {"kind": "transformer", "hidden_size": width, "num_layers": 1, "nhead": NHEAD,
                "max_length": max_length}
    chrono = {"init": "chrono", "max_timescale": max_length} if init == "chrono" else {}
    return {"hidden_size": width, "num_layers": 1, "cell": kind, **chrono}


def build(kind: str, width: int, embedding: int, signals: int, noise: int,
          max_length: int, init: str = "default") -> LSTMClassifierNet:
    return LSTMClassifierNet(1 + signals + noise, signals, PAD, embedding,
                             encoder_settings(kind, width, max_length, init), pooling="last",
                             dropout=0.0)


def encoder_params(kind: str, width: int, embedding: int) -> int:
    net = build(kind, width, embedding, 2, 2, 16)
    return sum(p.numel() for p in net.encoder.parameters())


def widths_at_equal_params(width: int, embedding: int) -> dict[str, int]:
    """The Transformer at ``width``; the LSTM and GRU widths of the same encoder parameters."""
    target = encoder_params("transformer", width, embedding)
    return {kind: width if kind == "transformer" else
            solve_width(lambda w, k=kind: encoder_params(k, w, embedding), target,
                        width_step(kind))
            for kind in KINDS}


@torch.no_grad()
def accuracy(net: LSTMClassifierNet, tokens: torch.Tensor, labels: torch.Tensor,
             batch: int) -> float:
    net.eval()
    correct = 0
    for start in range(0, len(tokens), batch):
        x = tokens[start:start + batch]  # (b, T)
        lengths = torch.full((len(x),), x.size(1), device=x.device)  # (b,)
        correct += int((net(x, lengths).argmax(1) == labels[start:start + batch]).sum())
    net.train()
    return correct / len(tokens)


def train_one(kind: str, width: int, distance: int, *, embedding: int, signals: int,
              noise: int, steps: int, batch: int, lr: float, eval_size: int,
              device: torch.device, seed: int = 0, init: str = "default") -> dict[str, Any]:
    """Train one model on one distance; its held-out accuracy and training seconds."""
    T = distance + PREFIX + 1
    torch.manual_seed(seed)
    net = build(kind, width, embedding, signals, noise, T, init).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    schedule = WarmupCosineLR(optimizer, steps, warmup_steps=max(1, steps // 10),
                              min_lr_ratio=0.05)
    data = torch.Generator().manual_seed(seed + 1)
    lengths = torch.full((batch,), T, device=device)  # (B,)
    start = time.perf_counter()
    losses = []
    for _ in range(steps):
        tokens, labels = make_batch(batch, distance, signals, noise, data)
        loss = F.cross_entropy(net(tokens.to(device), lengths), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    held_out = torch.Generator().manual_seed(10_000 + distance)  # the same for every kind
    tokens, labels = make_batch(eval_size, distance, signals, noise, held_out)
    acc = accuracy(net, tokens.to(device), labels.to(device), batch=max(batch, 64))
    tail = losses[-max(1, steps // 10):]
    return {"kind": kind, "init": init, "distance": distance, "T": T, "width": width,
            "accuracy": acc, "final_loss": sum(tail) / len(tail), "seconds": seconds}


def measure(width: int, distances: Sequence[int], *, embedding: int, signals: int, noise: int,
            steps: int, batch: int, lr: float, eval_size: int, device: torch.device,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    widths = widths_at_equal_params(width, embedding)
    rows = []
    for distance in distances:
        for kind in KINDS:
            for init in INITS[kind]:
                row = train_one(kind, widths[kind], distance, embedding=embedding,
                                signals=signals, noise=noise, steps=steps, batch=batch, lr=lr,
                                eval_size=eval_size, device=device, init=init)
                log(f"  long range: d={distance} {kind} ({init} init) "
                    f"acc={row['accuracy']:.3f} ({row['seconds']:.0f} s)")
                rows.append(row)
    params = {kind: encoder_params(kind, w, embedding) for kind, w in widths.items()}
    return {"widths": widths, "encoder_params": params, "embedding": embedding,
            "signals": signals, "noise": noise, "chance": 1 / signals, "steps": steps,
            "batch": batch, "lr": lr, "eval_size": eval_size,
            "margin": 2 * math.sqrt(0.25 / eval_size), "rows": rows}
