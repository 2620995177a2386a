"""Training callbacks: a guard against divergence, exact resumption, and a progress display
that suits both a terminal and a log file."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

from nlp_lstm.training.finetune import freeze_groups, layer_groups, unfrozen_groups


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or gradient; the last good state was saved."""


class NaNGuard(pl.Callback):
    """Stops the run at the first non-finite loss, gradient or weight, and saves the last good
    state (the weights before the step that went wrong) as ``last-good.ckpt``.

    A finite gradient can still blow the weights up (a huge learning rate, weight decay), so
    the guard keeps a copy of the weights from before each optimizer step: one extra copy of
    the parameters in memory and one copy per step (a few percent of a step for an LSTM).

    Args:
        dirpath: where ``last-good.ckpt`` goes; None: the trainer's checkpoint folder.
        check_weights: also check the weights after every step (needs the copy).
    """

    def __init__(self, dirpath: str | None = None, check_weights: bool = True) -> None:
        self.dirpath = dirpath
        self.check_weights = check_weights
        self._before: list[torch.Tensor] | None = None

    def _stop(self, trainer: pl.Trainer, what: str) -> None:
        folder = Path(self.dirpath) if self.dirpath else _checkpoint_dir(trainer)
        path = folder / "last-good.ckpt"
        # Full state (optimizer too), so the run can resume from it.
        trainer.save_checkpoint(path, weights_only=False)
        raise DivergenceError(
            f"{what} at step {trainer.global_step} (epoch {trainer.current_epoch}); the run "
            f"stopped. The last good state is in {path}. Lower the learning rate or check the "
            "data."
        )

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if not torch.isfinite(loss.detach()).all():
            self._stop(trainer, f"the loss became {loss.item()}")

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        # One fused norm over all gradients is finite exactly when every gradient is; only a
        # non-finite one is looked for by name (a per-tensor check cost 5% of a seq2seq step).
        named = [(n, p.grad) for n, p in pl_module.named_parameters() if p.grad is not None]
        if named and not _finite_total([g for _, g in named]):
            bad = [n for n, g in named if not torch.isfinite(g).all()]
            if bad:  # else the norm itself overflowed: huge, finite gradients
                self._stop(trainer, f"the gradient of {bad[0]} became non-finite")
        if self.check_weights:
            params = [p.detach() for p in pl_module.parameters()]
            if self._before is None:
                self._before = [p.clone() for p in params]
            else:
                torch._foreach_copy_(self._before, params)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._before is None:
            return
        params = [p.detach() for p in pl_module.parameters()]
        if _finite_total(params) or all(torch.isfinite(p).all() for p in params):
            return
        torch._foreach_copy_(params, self._before)  # back to the weights from before this step
        self._stop(trainer, "an optimizer step made the weights non-finite")


def _finite_total(tensors: list[torch.Tensor]) -> bool:
    """True when every element is finite (one fused norm); False may also mean that the norm
    overflowed (values near 1e19 in float32): callers then check tensor by tensor."""
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(tensors)))


def _checkpoint_dir(trainer: pl.Trainer) -> Path:
    callback = trainer.checkpoint_callback
    if callback is not None and getattr(callback, "dirpath", None):
        return Path(callback.dirpath)
    return Path(trainer.default_root_dir) / "checkpoints"


class ValidateAtStop(pl.Callback):
    """Validate on the step that reaches ``max_steps``. Lightning ends the epoch there
    without validating unless the step happens to be a validation step, so best.ckpt and the
    final evaluation missed every step since the last validation; a stop requested by a
    callback does validate (as ``max_time`` and a time budget stop)."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True


class RNGState(pl.Callback):
    """Saves Python, NumPy and torch RNG states in checkpoints and restores them when training
    resumes, so a run resumed at an epoch boundary draws the same dropout masks as one that was
    never interrupted. States are stored as tensors and lists: checkpoints stay loadable with
    ``weights_only=True``."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        version, mt_state, gauss = random.getstate()
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint["rng_states"] = {
            "python": [version, list(mt_state), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._pending = checkpoint.get("rng_states")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Applied after the sanity check, whose data loaders also draw from the torch RNG.
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        version, mt_state, gauss = state["python"]
        random.setstate((version, tuple(mt_state), gauss))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class LineProgress(ProgressBar):
    """A plain progress display for logs: one line every ``every_n_steps`` training steps and
    one per validation, no control characters."""

    def __init__(self, every_n_steps: int = 50) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()

    def _line(self, trainer: pl.Trainer, prefix: str) -> None:
        metrics = {k: v for k, v in self.get_metrics(trainer, trainer.lightning_module).items()
                   if k != "v_num"}
        shown = "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in metrics.items())
        print(f"{prefix}  {shown}", flush=True)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._enabled and (batch_idx + 1) % self.every_n_steps == 0:
            total = self.total_train_batches
            rate = (batch_idx + 1) / max(1e-9, time.monotonic() - self._start)
            self._line(trainer, f"epoch {trainer.current_epoch} step {batch_idx + 1}/{total} "
                                f"({rate:.1f} it/s)")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled and not trainer.sanity_checking:
            self._line(trainer, f"epoch {trainer.current_epoch} validation")


def progress_bar(every_n_steps: int = 50) -> ProgressBar:
    """A rich progress bar in a terminal, plain lines when stdout is a file or a pipe."""
    if sys.stdout.isatty():
        return RichProgressBar()
    return LineProgress(every_n_steps)


def count_tokens(batch: Any) -> int:
    """Real (unpadded) time steps in a batch (tokens, for text): the sum of its ``*lengths``
    tensors; else B*T of its ``input`` or, without one, of its first tensor of two or more
    dimensions (B, T, ...), since a batch without lengths has no padding (language-model
    chunks (B, T), feature windows (B, T, F)); else 0."""
    if isinstance(batch, dict):
        lengths = [v for k, v in batch.items() if k.endswith("lengths")]
        if lengths:
            return int(sum(int(t.sum()) for t in lengths))
        steps = batch.get("input")
        if not torch.is_tensor(steps):
            steps = next((v for v in batch.values() if torch.is_tensor(v) and v.dim() >= 2),
                         None)
        if steps is not None:
            return int(steps.shape[:2].numel())  # B*T, whatever the feature axes
    return 0


class Throughput(pl.Callback):
    """Training throughput in real tokens per second, over all ranks; logged as
    ``train/tokens_per_s`` and written to ``<dirpath>/throughput.json`` when training ends.
    The first ``warmup_steps`` steps (allocation, autotuning) are left out."""

    def __init__(self, dirpath: str | None = None, warmup_steps: int = 10) -> None:
        self.dirpath = dirpath
        self.warmup_steps = warmup_steps
        self._tokens = 0
        self._steps = 0
        self._start: float | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self._steps == self.warmup_steps and self._start is None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self._steps += 1
        if self._start is not None:
            self._tokens += count_tokens(batch) * trainer.world_size

    def tokens_per_second(self) -> float:
        if self._start is None or not self._tokens:
            return 0.0
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return self._tokens / (time.perf_counter() - self._start)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rate = self.tokens_per_second()
        if trainer.is_global_zero and self.dirpath and rate:
            import json

            Path(self.dirpath).mkdir(parents=True, exist_ok=True)
            summary = {"tokens_per_second": rate, "measured_steps": self._steps - self.warmup_steps,
                       "world_size": trainer.world_size, "precision": str(trainer.precision)}
            (Path(self.dirpath) / "throughput.json").write_text(json.dumps(summary, indent=2))


class GradualUnfreezing(pl.Callback):
    """ULMFiT's gradual unfreezing of ``pl_module.net``: the top layer group trains from the
    first step, one more group every ``every_steps`` optimizer steps, all of them in the end;
    everything trainable again when fitting ends. Add it to a run with
    ``+callbacks.unfreeze._target_=nlp_lstm.training.callbacks.GradualUnfreezing
    +callbacks.unfreeze.every_steps=100``."""

    def __init__(self, every_steps: int) -> None:
        unfrozen_groups(0, 1, every_steps)  # a bad interval fails here, before training
        self.every_steps = every_steps

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        groups = len(layer_groups(pl_module.net))
        freeze_groups(pl_module.net, unfrozen_groups(trainer.global_step, groups,
                                                     self.every_steps))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        freeze_groups(pl_module.net, len(layer_groups(pl_module.net)))


class TrainingCurve(pl.Callback):
    """Every optimizer step's loss, gradient norm before clipping and learning rate (the one
    the step applied, of the first parameter group), one CSV row a step in
    ``<dirpath>/curve.csv`` (``step,loss,grad_norm,lr,seconds``): what a run looked like step
    by step, to tell a diverging run from a good one (the CSV logger keeps one step in
    ``log_every_n_steps``). Rows are appended, so a resumed run continues the file.

    The norm is the 2-norm over all gradients, taken where Lightning calls
    ``on_before_optimizer_step``: after the backward pass (and an AMP scaler's unscaling),
    before ``gradient_clip_val`` clips. Rank 0 writes; under DDP its gradients are already the
    ranks' average.

    Args:
        dirpath: the folder of ``curve.csv``; None: the trainer's ``default_root_dir``.
        flush_every: rows buffered between writes.
    """

    COLUMNS = ("step", "loss", "grad_norm", "lr", "seconds")

    def __init__(self, dirpath: str | None = None, flush_every: int = 50) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be positive, got {flush_every}")
        self.dirpath = dirpath
        self.flush_every = flush_every
        self._rows: list[tuple[int, float, float, float, float]] = []
        self._grad_norm = self._lr = float("nan")
        self._start = time.perf_counter()

    def path(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or trainer.default_root_dir) / "curve.csv"

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self._grad_norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        self._lr = float(optimizer.param_groups[0]["lr"])  # the rate this step applies

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        # The loss as the task logs it (a translation model logs it per token whatever it
        # optimizes), else the one training_step returned.
        loss = trainer.callback_metrics.get("train/loss")
        if loss is None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or not trainer.is_global_zero:
            return
        self._rows.append((trainer.global_step, float(loss), self._grad_norm, self._lr,
                           time.perf_counter() - self._start))
        if len(self._rows) >= self.flush_every:
            self._flush(trainer)

    def _flush(self, trainer: pl.Trainer) -> None:
        if not self._rows:
            return
        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a") as f:
            if new:
                f.write(",".join(self.COLUMNS) + "\n")
            f.writelines(f"{s},{loss:.6g},{g:.6g},{lr:.6g},{t:.2f}\n"
                         for s, loss, g, lr, t in self._rows)
        self._rows = []

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        self._flush(trainer)  # a diverged run's curve is the one worth reading


def read_curve(path: str | Path) -> dict[str, list[float]]:
    """``curve.csv`` (``TrainingCurve``) -> its columns by name."""
    import csv

    columns: dict[str, list[float]] = {c: [] for c in TrainingCurve.COLUMNS}
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            for c in TrainingCurve.COLUMNS:
                columns[c].append(float(row[c]))
    return columns
