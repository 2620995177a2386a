"""Evaluate a checkpoint on a split of a data set; the checkpoint alone defines the model."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from nlp_lstm.checkpoint import load_model


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Metrics of ``cfg.ckpt_path`` on ``cfg.split`` of ``cfg.data``, written to ``cfg.output``
    (default: ``outputs/eval/<checkpoint name>-<split>.json``)."""
    model = load_model(cfg.ckpt_path, task=cfg.task.name)
    if "labels" in cfg.data.source:  # user files: the checkpoint fixes the class order
        cfg.data.source.labels = list(model.labels)
    datamodule = instantiate(cfg.data, trained_tokenizer=model.tokenizer.to_json())
    if list(datamodule.labels) != list(model.labels):
        raise ValueError(f"the data's labels {list(datamodule.labels)} differ from the "
                         f"checkpoint's {list(model.labels)}")
    splits = datamodule.splits
    if cfg.split not in splits:
        raise ValueError(f"split={cfg.split!r} is not in the data; expected one of {splits}")

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    trainer = pl.Trainer(accelerator=cfg.accelerator, devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    loader = datamodule.dataloader(cfg.split)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        raw = trainer.test(model, dataloaders=loader, verbose=False)[0]
    # test_step logs under "test/"; name the metrics after the split that was evaluated.
    metrics: dict[str, Any] = {
        f"{cfg.split}/{key.split('/', 1)[1]}": float(value) for key, value in sorted(raw.items())
    }
    metrics[f"{cfg.split}/confusion"] = model.confusion
    metrics["examples"] = len(loader.dataset)
    metrics["truncated_examples"] = datamodule.truncated
    metrics["checkpoint"] = str(cfg.ckpt_path)

    output = Path(cfg.output or f"outputs/eval/{Path(cfg.ckpt_path).stem}-{cfg.split}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(metrics, indent=2) + "\n")
    _print(metrics, model.labels, str(output))
    return metrics


def _print(metrics: dict[str, Any], labels: list[str], path: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    confusion = None
    for key, value in metrics.items():
        if key.endswith("/confusion"):
            confusion = value
        elif isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
        elif isinstance(value, int):
            table.add_row(key, str(value))
    console.print(table)
    if confusion is not None:
        matrix = Table(title="Confusion (rows: true, columns: predicted)")
        matrix.add_column("")
        for label in labels:
            matrix.add_column(label, justify="right")
        for label, row in zip(labels, confusion, strict=True):
            matrix.add_row(label, *map(str, row))
        console.print(matrix)
    console.print(f"Metrics written to {path}", highlight=False)
    print(json.dumps(metrics))
