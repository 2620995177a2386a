"""Fine-tuning a pretrained network, as ULMFiT does it (Howard & Ruder 2018): layer groups from
the embedding up to the head, discriminative learning rates (each group ``layer_lr_decay``
times slower than the one above it), gradual unfreezing (the top group first, one more group
every ``every`` steps) and the slanted triangular schedule (a short linear warm-up to the peak,
a long linear decay to ``1 / ratio`` of it).

Torch only; a network's groups are found by its module names: ``embedding`` at the bottom, the
encoder's layers (``*_l{i}`` as in ``nn.LSTM``, or ``layers.{i}``) in order, everything else
(pooling, head) at the top.

Legend: G layer groups, bottom (0) to top (G - 1).
"""

from __future__ import annotations

import math
import re
from typing import Any

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

_LAYER = re.compile(r"(?:_l|layers\.)(\d+)")


def layer_groups(net: nn.Module) -> list[list[tuple[str, nn.Parameter]]]:
    """The network's parameters in G groups, bottom to top: the embedding, each encoder layer
    (both directions of a layer together), then the rest. Empty groups are left out."""
    embedding: list[tuple[str, nn.Parameter]] = []
    layers: dict[int, list[tuple[str, nn.Parameter]]] = {}
    top: list[tuple[str, nn.Parameter]] = []
    for name, param in net.named_parameters():
        if name.split(".")[0] == "embedding":
            embedding.append((name, param))
        elif name.split(".")[0] == "encoder" and (match := _LAYER.search(name)):
            layers.setdefault(int(match.group(1)), []).append((name, param))
        else:
            top.append((name, param))
    groups = [embedding, *(layers[i] for i in sorted(layers)), top]
    return [g for g in groups if g]


def discriminative_groups(net: nn.Module, lr: float,
                          layer_lr_decay: float = 2.6) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the top group at ``lr``, each group below it
    ``layer_lr_decay`` times slower (ULMFiT's 2.6); 1.0 gives every group ``lr``."""
    if not lr > 0 or not layer_lr_decay >= 1:
        raise ValueError(f"lr must be positive and layer_lr_decay >= 1, got {lr} and "
                         f"{layer_lr_decay}")
    groups = layer_groups(net)
    top = len(groups) - 1
    return [{"params": [p for _, p in group], "lr": lr / layer_lr_decay ** (top - g),
             "names": [n for n, _ in group]} for g, group in enumerate(groups)]


def unfrozen_groups(step: int, groups: int, every: int | None) -> int:
    """How many groups, counted from the top, train at ``step`` under gradual unfreezing: one
    at first, one more every ``every`` steps, all of them once each has had its turn;
    ``every=None`` trains all from the start."""
    if every is None:
        return groups
    if every < 1:
        raise ValueError(f"the unfreezing interval must be a positive number of steps, got "
                         f"{every}")
    return min(groups, 1 + step // every)


def freeze_groups(net: nn.Module, trainable: int) -> None:
    """Let the top ``trainable`` groups train and freeze the others (``requires_grad``)."""
    groups = layer_groups(net)
    for g, group in enumerate(groups):
        for _, param in group:
            param.requires_grad_(g >= len(groups) - trainable)


class SlantedTriangularLR(LRScheduler):
    """ULMFiT's slanted triangular learning rate: from ``1 / ratio`` of each group's rate up to
    all of it over the first ``cut_frac`` of ``total_steps``, then linearly back down to
    ``1 / ratio`` at the end."""

    def __init__(self, optimizer: Optimizer, total_steps: int, cut_frac: float = 0.1,
                 ratio: float = 32.0, last_epoch: int = -1) -> None:
        if total_steps < 1 or not 0 < cut_frac < 1 or ratio < 1:
            raise ValueError(f"total_steps must be positive, cut_frac in (0, 1) and ratio >= 1, "
                             f"got {total_steps}, {cut_frac} and {ratio}")
        self.cut_frac, self.ratio = cut_frac, ratio
        self.set_total_steps(total_steps)
        super().__init__(optimizer, last_epoch)

    def set_total_steps(self, total_steps: int) -> None:
        """Where the schedule ends (and so where it peaks): set at construction, or later by a
        time budget (``nlp_lstm.training.budget``)."""
        if total_steps < 1:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        self.total_steps = int(total_steps)
        self.cut = max(1, math.floor(total_steps * self.cut_frac))

    def factor(self, step: int) -> float:
        """The multiplier of each group's rate at ``step``."""
        t = min(step, self.total_steps)
        if t < self.cut:
            p = t / self.cut
        else:
            p = 1 - (t - self.cut) / max(1, self.total_steps - self.cut)
        return (1 + p * (self.ratio - 1)) / self.ratio

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]
