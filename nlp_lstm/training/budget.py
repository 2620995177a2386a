"""A wall-clock budget that sizes the schedule: ``budget=00:00:45:00`` on the command line.

A recipe tuned as "9 epochs in 45 minutes" breaks on a slower machine: ``max_time`` stops it in
epoch 6 with the cosine schedule far from its floor. With a budget the run instead measures
itself and fixes its length:

1. The first steps run on a provisional schedule (warmup, then a flat rate).
2. After ``skip_steps`` + ``probe_steps`` optimizer steps it knows the seconds per step; the
   seconds per validation come from the sanity check (scaled from its batches to the whole
   split) or, without one, are guessed as one step per validation batch.
3. It picks the most steps whose training, validations (as the trainer schedules them, plus one
   at the stop) and final evaluation (``final_passes`` validation passes, times the model's
   ``final_eval_cost``: a beam search costs more than the greedy decoding of validation) fit in
   what is left of the budget, and sets the scheduler's ``total_steps`` to it, so warmup and
   cosine end exactly there.
4. Each validation until ``REPLAN_UNTIL`` of the planned steps re-plans from the steps since
   the previous validation (a machine that slows down, or speeds up, midway moves the cosine's
   end by the change, a few percent); from then on the plan is fixed.
5. At the planned step it asks the trainer to stop, which validates (Lightning validates when
   a callback stops the run), so best.ckpt has seen every step. Should the machine slow down
   in the last stretch, it stops early, that validation and the final evaluation still within
   the budget, rather than overrun.

The budget counts from ``start`` (the train command passes the moment it began, so data
preparation counts too). Resuming keeps the schedule: the plan is saved in checkpoints.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

PASS_OVERHEAD = 0.25  # seconds to load the best checkpoint and set up an evaluation loop
REPLAN_UNTIL = 0.9  # validations re-plan until this fraction of the planned steps
RECENT_STEPS = 10  # the fewest steps since the last validation that tell the speed now


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``: a number of seconds, or "DD:HH:MM:SS" (Lightning's ``max_time``),
    "HH:MM:SS" or "MM:SS"."""
    if isinstance(value, bool):
        raise ValueError(f"budget={value!r} is not a duration; expected DD:HH:MM:SS or seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        parts = str(value).strip().split(":")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if not 1 <= len(numbers) <= 4 or any(n < 0 for n in numbers):
            raise ValueError(f"budget={value!r} is not a duration; expected DD:HH:MM:SS, HH:MM:SS, "
                             f"MM:SS or a number of seconds")
        seconds = 0.0
        for n, unit in zip(reversed(numbers), (1, 60, 3600, 86400), strict=False):
            seconds += n * unit
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"budget={value!r} must be a positive duration")
    return seconds


def format_duration(seconds: float) -> str:
    """"H:MM:SS" for messages."""
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def validations_in(batches: int, per_epoch: float, every: float, epochs: int | None) -> int:
    """How many validations the trainer runs in the first ``batches`` training batches.

    Args:
        batches: training batches read so far (optimizer steps x accumulation).
        per_epoch: training batches in an epoch (``num_training_batches``; inf: no epochs).
        every: validate every this many batches within an epoch (``val_check_batch``).
        epochs: validate every this many epochs (``check_val_every_n_epoch``); None: count
            ``every`` across epochs.
    """
    if math.isinf(every) or every <= 0:
        return 0
    if epochs is None or math.isinf(per_epoch):
        return int(batches // every)
    per_epoch = int(per_epoch)
    if per_epoch <= 0:
        return 0
    in_epoch = max(1, int(per_epoch // every))  # every > per_epoch: once, at the epoch's end
    full, rest = divmod(batches, per_epoch)
    count = (full // epochs) * in_epoch
    if (full + 1) % epochs == 0:  # the epoch in progress validates
        count += min(in_epoch, int(rest // every))
    return count


class TimeBudget(Callback):
    """Fit the run, warmup and cosine included, to a wall-clock budget (module docstring).

    Args:
        budget: seconds, or a duration string for ``parse_duration``.
        start: ``time.monotonic()`` when the budget began (default: when this was built).
        final_passes: validation-sized passes after fitting (the train command's final
            validation of the best checkpoint, and its test pass when it runs one).
        probe_steps: optimizer steps timed before the first plan.
        skip_steps: first steps left out of the timing (allocation, warm caches).
        margin: seconds kept back for what is not measured (saving, exiting); default 3% of
            the budget, at most 20 s.
        dirpath: where to write ``budget.json`` (the plan and what it was based on).
    """

    def __init__(
        self,
        budget: str | int | float,
        start: float | None = None,
        final_passes: int = 1,
        probe_steps: int = 30,
        skip_steps: int = 3,
        margin: float | None = None,
        dirpath: str | None = None,
    ) -> None:
        self.budget = parse_duration(budget)
        self.start = time.monotonic() if start is None else start
        margin = min(20.0, 0.03 * self.budget) if margin is None else margin
        if final_passes < 0 or probe_steps < 1 or skip_steps < 0 or margin < 0:
            raise ValueError(f"TimeBudget: final_passes, skip_steps and margin must be >= 0 and "
                             f"probe_steps >= 1, got {final_passes}, {skip_steps}, {margin} and "
                             f"{probe_steps}")
        self.final_passes, self.probe_steps, self.skip_steps = final_passes, probe_steps, skip_steps
        self.margin = margin
        self.dirpath = dirpath
        self.total_steps: int | None = None  # the plan; None until measured
        self.plans: list[dict[str, Any]] = []
        self.spent_before = 0.0  # seconds a resumed run had used before
        self.stopped_early = False
        self._val_seconds: list[float] = []  # per validation pass (during fitting)
        self._sanity_per_batch: float | None = None
        self._sanity_ends: list[float] = []
        self._train_seconds = 0.0  # wall time of training steps since skip_steps
        self._timed_steps = 0
        self._recent_seconds = 0.0  # the same since the last validation: the speed now
        self._recent_steps = 0
        self._mark: float | None = None  # the last training step's end (None after validation)
        self._val_start: float | None = None

    # ------------------------------------------------------------------- state
    @property
    def deadline(self) -> float:
        return self.start + self.budget - self.spent_before

    def state_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "total_steps": self.total_steps, "plans": self.plans,
                "spent": self.spent_before + time.monotonic() - self.start}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.total_steps = state_dict["total_steps"]
        self.plans = list(state_dict["plans"])
        self.spent_before = float(state_dict["spent"])

    # ------------------------------------------------------------------- hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._schedulers(trainer)  # fail now, not after the probe, when none can be sized
        if self.total_steps is not None:  # resumed: the saved plan holds
            self._apply(trainer, self.total_steps)
            rank_zero_info(f"budget: resumed; the schedule still ends at step "
                           f"{self.total_steps:,}")

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sanity_ends = []

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if trainer.sanity_checking:
            self._sanity_ends.append(time.monotonic())

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ends = self._sanity_ends
        if len(ends) >= 2:  # from the first batch's end: its one-time costs left out
            self._sanity_per_batch = (ends[-1] - ends[0]) / (len(ends) - 1)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        now = time.monotonic()
        step = trainer.global_step
        if self._mark is not None and step > self.skip_steps:
            self._train_seconds += now - self._mark
            self._timed_steps += 1
            self._recent_seconds += now - self._mark
            self._recent_steps += 1
        self._mark = now
        if self.total_steps is None and self._timed_steps >= self.probe_steps:
            self._plan(trainer, pl_module, now)
        stop = self.total_steps is not None and step >= self.total_steps
        # Behind the plan by more than its margin: what must still fit is the validation at
        # the stop and the final evaluation.
        late = now > self.deadline - self._val_pass(trainer) - self._final_seconds(trainer,
                                                                                   pl_module)
        if trainer.world_size > 1:  # one decision for every rank (their clocks differ)
            late = trainer.strategy.reduce_boolean_decision(late, all=False)
        if late and not stop and not self.stopped_early:
            self.stopped_early = True
            rank_zero_info(f"budget: stopping at step {step:,} of {self.total_steps or '?'}: the "
                           f"rest of the budget is needed for the final evaluation")
        if stop or late:
            trainer.should_stop = True

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._val_start = time.monotonic()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self._val_start is not None:  # a validation (and its checkpoint saving) just ended
            self._after_validation(trainer, pl_module, time.monotonic())

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._val_start is not None:
            self._after_validation(trainer, pl_module, time.monotonic(), replan=False)
        self._write(trainer)

    # ---------------------------------------------------------------- planning
    def _after_validation(self, trainer: pl.Trainer, pl_module: pl.LightningModule, now: float,
                          replan: bool = True) -> None:
        assert self._val_start is not None
        self._val_seconds.append(now - self._val_start)
        self._val_start, self._mark = None, now
        if (replan and self.total_steps is not None and self._timed_steps
                and trainer.global_step < REPLAN_UNTIL * self.total_steps
                and not self.spent_before):
            self._plan(trainer, pl_module, now)
        self._recent_seconds, self._recent_steps = 0.0, 0

    def _val_pass(self, trainer: pl.Trainer) -> float:
        """Seconds for one validation pass: measured, else scaled from the sanity check, else
        one step time per validation batch."""
        if self._val_seconds:
            return sum(self._val_seconds) / len(self._val_seconds)
        batches = sum(float(n) for n in trainer.num_val_batches) if trainer.num_val_batches else 0
        per_batch = self._sanity_per_batch or self._step_time()
        return per_batch * (batches if math.isfinite(batches) else 0)

    def _step_time(self) -> float:
        """Seconds per step: over the steps since the last validation when there are enough of
        them (the machine's speed now), else over every timed step."""
        if self._recent_steps >= RECENT_STEPS:
            return self._recent_seconds / self._recent_steps
        return self._train_seconds / max(1, self._timed_steps)

    def _final_seconds(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float:
        cost = float(getattr(pl_module, "final_eval_cost", 1.0))
        return self.final_passes * (cost * self._val_pass(trainer) + PASS_OVERHEAD)

    def _plan(self, trainer: pl.Trainer, pl_module: pl.LightningModule, now: float) -> None:
        step, s, v = trainer.global_step, self._step_time(), self._val_pass(trainer)
        left = self.deadline - now - self.margin - self._final_seconds(trainer, pl_module)
        accumulate = trainer.accumulate_grad_batches
        counts = (float(trainer.num_training_batches), float(trainer.val_check_batch or math.inf),
                  trainer.check_val_every_n_epoch)

        def cost(total: int) -> float:  # seconds from now until step `total`, validations incl.
            vals = (validations_in(total * accumulate, *counts)
                    - validations_in(step * accumulate, *counts) + 1)  # +1: at the stop
            return (total - step) * s + vals * v

        lo, hi = step, step + 1
        while cost(hi) <= left:  # grow, then bisect: the most steps that fit
            lo, hi = hi, step + 2 * (hi - step)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if cost(mid) <= left else (lo, mid)
        total = max(lo, step + 1)
        if trainer.world_size > 1:  # every rank runs rank 0's plan
            total = int(trainer.strategy.broadcast(total, src=0))
        first = self.total_steps is None
        self.total_steps = total
        self._apply(trainer, total)
        plan = {"at_step": step, "seconds_per_step": round(s, 4),
                "seconds_per_validation": round(v, 2),
                "validations_left": validations_in(total * accumulate, *counts)
                - validations_in(step * accumulate, *counts) + 1,
                "final_evaluation_seconds": round(self._final_seconds(trainer, pl_module), 1),
                "elapsed_seconds": round(now - self.start + self.spent_before, 1),
                "total_steps": total}
        self.plans.append(plan)
        if first:
            rank_zero_info(
                f"budget {format_duration(self.budget)}: {s:.3f} s a step, {v:.1f} s a "
                f"validation ({plan['validations_left']} to go), "
                f"{plan['final_evaluation_seconds']:.0f} s for the final evaluation: "
                f"{total:,} steps, the schedule ends there")

    def _schedulers(self, trainer: pl.Trainer) -> list[Any]:
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        for scheduler in schedulers:
            if not callable(getattr(scheduler, "set_total_steps", None)):
                raise ValueError(f"budget: the scheduler {type(scheduler).__name__} cannot be "
                                 f"sized by the budget; use one with set_total_steps "
                                 f"(nlp_lstm.training.optim.WarmupCosineLR, "
                                 f"nlp_lstm.training.finetune.SlantedTriangularLR) or none")
        return schedulers

    def _apply(self, trainer: pl.Trainer, total: int) -> None:
        for scheduler in self._schedulers(trainer):
            scheduler.set_total_steps(total)

    def _write(self, trainer: pl.Trainer) -> None:
        if self.dirpath is None or not trainer.is_global_zero:
            return
        path = Path(self.dirpath) / "budget.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = {"budget_seconds": self.budget, "total_steps": self.total_steps,
                   "steps_run": trainer.global_step, "stopped_early": self.stopped_early,
                   "validation_seconds": [round(v, 2) for v in self._val_seconds],
                   "fit_seconds": round(time.monotonic() - self.start + self.spent_before, 1),
                   "plans": self.plans}
        path.write_text(json.dumps(summary, indent=2) + "\n")
