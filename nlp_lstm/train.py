"""Training: build data, model and trainer from a composed config, fit, and report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities import rank_zero_only

from nlp_lstm.cli import check_encoder_choice
from nlp_lstm.module import quiet_loops
from nlp_lstm.precision import check_precision
from nlp_lstm.registry import get_task
from nlp_lstm.report import print_metrics
from nlp_lstm.task import Task


def _number(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def train(cfg: DictConfig) -> float | None:
    """Train the configured task. Writes checkpoints, CSV metrics, the resolved config and
    ``metrics.json`` under ``cfg.paths.output_dir``; returns the monitored validation metric
    (for sweeps), or None when no validation ran."""
    check_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    if HydraConfig.initialized():  # a command-line run: its choices are known
        check_encoder_choice(HydraConfig.get().runtime.choices)
    out = Path(cfg.paths.output_dir)
    if rank_zero_only.rank == 0:  # under DDP every rank runs this function; one writes files
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    pl.seed_everything(cfg.seed, workers=True)

    task = get_task(cfg.task.name)
    datamodule = instantiate(cfg.data)
    if not isinstance(datamodule, task.datamodule):
        raise ValueError(f"task={task.name} needs data served by {task.datamodule.__name__}, "
                         f"but the data config builds a {type(datamodule).__name__}; pick a "
                         f"data= option of the {task.name} task")
    datamodule.prepare_data()  # Lightning runs it again under the trainer: a no-op by then
    datamodule.setup("fit")
    model = instantiate(cfg.model, **task.model_inputs(datamodule), _convert_="all")
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if not cfg.trainer.get("enable_progress_bar", True):  # the trainer's switch wins
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)

    # Our checkpoints hold tensors and plain data only: load them that way, also to resume.
    with quiet_loops():
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        if trainer.interrupted or trainer.fast_dev_run:
            return None

        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        ckpt = best or None  # without a checkpoint callback, report the final weights
        trainer.loggers = []  # the final evaluation goes to metrics.json, not into the curves
        metrics: dict[str, Any] = dict(trainer.validate(
            model, datamodule=datamodule, ckpt_path=ckpt, verbose=False, weights_only=True)[0])
        if cfg.get("test") and "test" in datamodule.splits:
            metrics.update(trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False,
                                        weights_only=True)[0])
            metrics.update({f"test/{name}": value for name, value in model.results.items()})
    metrics = {k: _number(v) for k, v in sorted(metrics.items())}
    if datamodule.truncated:
        metrics["truncated_examples"] = datamodule.truncated
    metrics["checkpoint"] = best
    if trainer.is_global_zero:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _report(metrics, best, task, model)
    return metrics.get(cfg.task.monitor)


def _report(metrics: dict[str, Any], best: str, task: Task, model: Any) -> None:
    print_metrics(metrics, "Final metrics (best checkpoint)", task, model)
    val = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                    if k.startswith("val/") and isinstance(v, float))
    print(f"Best checkpoint: {best or '(none saved)'}")
    print(f"Validation: {val}")
