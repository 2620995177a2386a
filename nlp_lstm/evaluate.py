"""Evaluate a checkpoint on a split of a data set; the checkpoint alone defines the model."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig

from nlp_lstm.module import quiet_loops
from nlp_lstm.registry import get_task
from nlp_lstm.report import print_metrics
from nlp_lstm.task import Task


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Metrics of ``cfg.ckpt_path`` on ``cfg.split`` of ``cfg.data``, written to ``cfg.output``
    (default: ``outputs/eval/<checkpoint name>-<split>.json``); the model's text outputs (if
    the task has any) go to the same path with the suffix ``.txt``."""
    task = get_task(cfg.task.name)
    model = task.load(cfg.ckpt_path)
    datamodule = task.prepare_eval(cfg, model)
    if cfg.split not in datamodule.splits and not getattr(datamodule.source, "any_split", False):
        raise ValueError(f"split={cfg.split!r} is not in the data; expected one of "
                         f"{datamodule.splits}")

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    trainer = pl.Trainer(accelerator=cfg.accelerator, devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    loader = datamodule.dataloader(cfg.split)
    start = time.perf_counter()
    with quiet_loops():
        raw = trainer.test(model, dataloaders=loader, verbose=False)[0]
    seconds = time.perf_counter() - start
    # test_step logs under "test/"; name the metrics after the split that was evaluated.
    metrics: dict[str, Any] = {
        f"{cfg.split}/{key.split('/', 1)[1]}": float(value) for key, value in sorted(raw.items())
    }
    metrics.update({f"{cfg.split}/{name}": value for name, value in model.results.items()})
    unit, count = datamodule.evaluation_size(loader)  # e.g. examples, or a stream's tokens
    metrics[unit] = count
    metrics["seconds"] = round(seconds, 3)
    metrics[f"{unit}_per_second"] = round(count / seconds, 1)
    metrics["truncated_examples"] = datamodule.truncated
    metrics["checkpoint"] = str(cfg.ckpt_path)

    output = Path(cfg.output or f"outputs/eval/{Path(cfg.ckpt_path).stem}-{cfg.split}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    if model.outputs:  # e.g. translations, one per line in data order
        outputs = output.with_suffix(".txt")
        outputs.write_text("".join(f"{line}\n" for line in model.outputs), encoding="utf-8")
        metrics["outputs"] = str(outputs)
    output.write_text(json.dumps(metrics, indent=2) + "\n")
    _print(metrics, task, model, str(output))
    return metrics


def _print(metrics: dict[str, Any], task: Task, model: Any, path: str) -> None:
    console = print_metrics(metrics, "Metrics", task, model)
    console.print(f"Metrics written to {path}", highlight=False)
    print(json.dumps(metrics))
