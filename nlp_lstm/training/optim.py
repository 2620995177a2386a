"""Learning-rate schedules."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler


class WarmupCosineLR(LRScheduler):
    """Linear warmup from 0 to the base rate over ``warmup_steps``, then cosine decay to
    ``min_lr_ratio`` times the base rate at ``total_steps``. Stepped once per optimizer step.

    ``decay_frac`` < 1 holds the base rate after the warmup and decays only over that last
    fraction of the steps after it (warmup-stable-decay, Hägele et al. 2024): a run whose
    length a time budget fixes late (``nlp_lstm.training.budget``) trains at full rate meanwhile,
    and a
    new plan moves where the decay starts rather than bending a decay already under way.
    A warmup longer than the run (a smoke test, a tiny data set) is capped at ``total_steps``.
    Its state is plain numbers, so checkpoints stay loadable with ``weights_only=True``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        decay_frac: float = 1.0,
        last_epoch: int = -1,
    ) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        if not 0.0 < decay_frac <= 1.0:
            raise ValueError(f"decay_frac must be in (0, 1], got {decay_frac}")
        self.decay_frac = float(decay_frac)
        self.requested_warmup = int(warmup_steps)
        self.set_total_steps(total_steps)
        self.min_lr_ratio = float(min_lr_ratio)
        super().__init__(optimizer, last_epoch)

    def set_total_steps(self, total_steps: int) -> None:
        """Where the cosine ends: set at construction, or later by a time budget
        (``nlp_lstm.training.budget``) once it has measured the step time."""
        if total_steps < 1:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        self.total_steps = int(total_steps)
        self.warmup_steps = min(self.requested_warmup, self.total_steps)

    def factor(self, step: int) -> float:
        """The multiplier of the base rate at a given step."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        decay_steps = max(1, round(self.decay_frac * (self.total_steps - self.warmup_steps)))
        decay_start = max(self.warmup_steps, self.total_steps - decay_steps)  # stable until here
        progress = min(1.0, max(0.0, (step - decay_start) / decay_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine

    def get_lr(self) -> list[float]:
        f = self.factor(self.last_epoch)
        return [base * f for base in self.base_lrs]
