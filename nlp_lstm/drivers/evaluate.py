"""Evaluate a checkpoint on a split of a data set; the checkpoint alone defines the model."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from nlp_lstm.core.task import Task
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import nest_loader_options
from nlp_lstm.drivers.registry import get_task
from nlp_lstm.evaluation.report import print_metrics
from nlp_lstm.training.module import quiet_loops


def evaluate(cfg: DictConfig, trained_data: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics of ``cfg.ckpt_path`` on ``cfg.split`` of ``cfg.data``, written to ``cfg.output``
    (default: ``outputs/eval/<checkpoint name>-<split>.json``); the model's text outputs (if
    the task has any) go to the same path with the suffix ``.txt``.

    ``trained_data``: None scores ``cfg.data``; a list (of ``data.*`` overrides, maybe empty)
    scores the data the checkpoint was trained on instead, with those overrides applied (the
    eval command's default when no ``data=`` is given)."""
    task = get_task(cfg.task.name)
    model = task.load(cfg.ckpt_path)
    if trained_data is None:
        datamodule, loader = _data(cfg, task, model)
    else:
        datamodule, loader = _trained_data(cfg, task, model, trained_data)

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    trainer = pl.Trainer(accelerator=cfg.accelerator, devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
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


def _data(cfg: DictConfig, task: Task, model: Any) -> tuple[Any, Any]:
    """The data module of ``cfg.data`` and the batches of ``cfg.split``."""
    datamodule = task.prepare_eval(cfg, model)
    if cfg.split not in datamodule.splits and not getattr(datamodule.source, "any_split", False):
        raise ValueError(f"split={cfg.split!r} is not in the data; expected one of "
                         f"{datamodule.splits}")
    return datamodule, datamodule.dataloader(cfg.split)


def _trained_data(cfg: DictConfig, task: Task, model: Any,
                  overrides: Sequence[str]) -> tuple[Any, Any]:
    """``_data`` of the data the checkpoint was trained on, with ``data.*`` overrides applied.
    A checkpoint that records none (written before nlp-lstm 0.3) keeps the task's default data,
    and says so."""
    stored = model.data_config
    if stored:
        data = OmegaConf.create(nest_loader_options(stored["config"]))
    else:
        print(f"note: {cfg.ckpt_path} does not record the data it was trained on; scoring the "
              f"task's default data ({cfg.data._target_}); give data=... to choose",
              file=sys.stderr)
        data = cfg.data
    with open_dict(cfg):
        for override in overrides:  # data.source.val=dev.tsv: source.val of that node
            key, _, value = override.lstrip("+").partition("=")
            OmegaConf.update(data, key.removeprefix("data."), yaml.safe_load(value),
                             force_add=True)
        cfg.data = data
    if not stored:
        return _data(cfg, task, model)
    # The data= option it was trained with, or (trained outside a command) its source's class.
    name = stored.get("choice") or OmegaConf.select(cfg.data, "source._target_",
                                                    default=cfg.data._target_).rsplit(".", 1)[-1]
    try:
        return _data(cfg, task, model)
    except (DataError, OSError) as e:
        raise DataError(f"{cfg.ckpt_path} was trained on data={name}, which cannot be read "
                        f"here ({' '.join(str(e).split())}); give data=... (and its settings) "
                        "to score other data") from e


def _print(metrics: dict[str, Any], task: Task, model: Any, path: str) -> None:
    console = print_metrics(metrics, "Metrics", task, model)
    console.print(f"Metrics written to {path}", highlight=False)
    print(json.dumps(metrics))
