"""Training: build data, model and trainer from a composed config, fit, and report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

from nlp_lstm.core.cli import check_encoder_choice
from nlp_lstm.core.task import Task
from nlp_lstm.drivers.registry import get_task
from nlp_lstm.evaluation.report import print_metrics
from nlp_lstm.training.budget import TimeBudget, format_duration, parse_duration
from nlp_lstm.training.module import quiet_loops
from nlp_lstm.training.precision import AUTO, check_precision, choose_precision, probe_training_step
from nlp_lstm.training.transfer import InitFrom, Source, adopt_tokenizer, init_from, read_sources


def _number(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def train(cfg: DictConfig) -> float | None:
    """Train the configured task. Writes checkpoints, CSV metrics, the resolved config and
    ``metrics.json`` under ``cfg.paths.output_dir``; returns the monitored validation metric
    (for sweeps), or None when no validation ran."""
    start = time.monotonic()  # a time budget counts from here: data preparation included
    budget = parse_duration(cfg.budget) if cfg.get("budget") else None
    check_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    if HydraConfig.initialized():  # a command-line run: its choices are known
        check_encoder_choice(HydraConfig.get().runtime.choices)
    out = Path(cfg.paths.output_dir)
    if rank_zero_only.rank == 0:  # under DDP every rank runs this function; one writes files
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    pl.seed_everything(cfg.seed, workers=True)

    task = get_task(cfg.task.name)
    transfer = _read_init_from(cfg)
    datamodule = instantiate(cfg.data)
    if not isinstance(datamodule, task.datamodule):
        raise ValueError(f"task={task.name} needs data served by {task.datamodule.__name__}, "
                         f"but the data config builds a {type(datamodule).__name__}; pick a "
                         f"data= option of the {task.name} task")
    datamodule.prepare_data()  # Lightning runs it again under the trainer: a no-op by then
    datamodule.setup("fit")
    model = instantiate(cfg.model, **task.model_inputs(datamodule), _convert_="all")
    choice = HydraConfig.get().runtime.choices.get("data") if HydraConfig.initialized() else None
    model.data_config = {"choice": choice,
                         "config": OmegaConf.to_container(cfg.data, resolve=False)}
    if transfer is not None:
        _apply_init_from(cfg, model, *transfer, out)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if not cfg.trainer.get("enable_progress_bar", True):  # the trainer's switch wins
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    overrides = _precision(cfg, model, datamodule, out)
    if budget is not None:
        callbacks.append(_time_budget(cfg, budget, start, datamodule, out))
        overrides |= {"max_epochs": -1, "max_steps": -1, "max_time": None,  # the budget's now
                      # the sanity check's batches time a validation before the plan needs it
                      "num_sanity_val_steps": max(2, cfg.trainer.get("num_sanity_val_steps", 2))}
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger,
                                      **overrides)

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
    metrics["precision"] = str(trainer.precision)
    if budget is not None:
        metrics |= {"budget_seconds": budget, "wall_seconds": round(time.monotonic() - start, 1)}
    if trainer.is_global_zero:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _report(metrics, best, task, model)
    return metrics.get(cfg.task.monitor)


def _time_budget(cfg: DictConfig, budget: float, start: float, datamodule: Any,
                 out: Path) -> TimeBudget:
    """The callback that sizes the schedule to ``budget`` seconds from ``start``; the final
    evaluation it reserves time for is the best checkpoint's validation, and its test."""
    ignored = ", ".join(f"trainer.{k}={cfg.trainer.get(k)}"
                        for k in ("max_epochs", "max_steps", "max_time"))
    rank_zero_info(f"budget {format_duration(budget)} sets the schedule's length (ignoring "
                   f"{ignored})")
    final_passes = 1 + int(bool(cfg.get("test")) and "test" in datamodule.splits)
    return TimeBudget(budget, start=start, final_passes=final_passes, dirpath=str(out))


def _precision(cfg: DictConfig, model: Any, datamodule: Any, out: Path) -> dict[str, Any]:
    """``trainer.precision=auto`` resolved for this machine and model (``choose_precision``),
    printed and written to ``precision.json``; the trainer's override, or none."""
    if str(cfg.trainer.precision) != AUTO:
        return {}
    # Several processes (DDP) must agree: the CPU's features decide without a timing probe.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1 or cfg.trainer.get("num_nodes", 1) > 1 \
        or cfg.trainer.get("devices") not in (1, "1", None)

    def probe() -> dict[str, dict[str, float]]:
        with torch.random.fork_rng():  # the run's random streams stay as they were
            batch = next(iter(datamodule.train_dataloader()))
        return probe_training_step(model, batch)

    chosen, why, measured = choose_precision(cfg.trainer.accelerator,
                                             None if several else probe)
    rank_zero_info(f"trainer.precision=auto: {chosen} ({why})")
    if rank_zero_only.rank == 0:
        (out / "precision.json").write_text(json.dumps(
            {"requested": AUTO, "chosen": chosen, "why": why, "probe": measured}, indent=2) + "\n")
    return {"precision": chosen}


def _read_init_from(cfg: DictConfig) -> tuple[InitFrom, list[Source]] | None:
    """``model.init_from`` checked and its checkpoints read, before any data is built; the
    data adopts their tokenizer unless ``remap``. None without it, or when resuming (the run's
    own checkpoint holds the weights then)."""
    node = cfg.model.get("init_from")
    if not node or cfg.get("ckpt_path"):
        return None
    spec = InitFrom.parse(OmegaConf.to_container(node, resolve=True))
    sources = read_sources(spec)
    if not spec.remap and cfg.data.get("tokenizer") is not None:
        recipe = instantiate(cfg.data.tokenizer).train([])  # the data's settings, no vocabulary
        with open_dict(cfg.data):
            cfg.data.trained_tokenizer = adopt_tokenizer(sources, recipe)
    return spec, sources


def _apply_init_from(cfg: DictConfig, model: Any, spec: InitFrom, sources: list[Source],
                     out: Path) -> None:
    """Load the pretrained modules, print and save the load report, and record the provenance
    (sources, modules, schedule) in the model, whose checkpoints carry it."""
    report = init_from(model.net, spec, sources, tokenizer=getattr(model, "tokenizer", None),
                       reverse=bool(getattr(model, "reverse", False)))
    node = OmegaConf.to_container(cfg.model, resolve=True)
    schedule = {key: node[key] for key in ("optimizer", "scheduler", "layer_lr_decay", "freeze")
                if node.get(key) is not None}
    unfreeze = (cfg.get("callbacks") or {}).get("unfreeze")
    if unfreeze:
        schedule["unfreeze"] = OmegaConf.to_container(unfreeze, resolve=True)
    model.provenance = {**report.provenance, "schedule": schedule}
    if rank_zero_only.rank == 0:
        print(report.table())
        (out / "init_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def _report(metrics: dict[str, Any], best: str, task: Task, model: Any) -> None:
    print_metrics(metrics, "Final metrics (best checkpoint)", task, model)
    val = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                    if k.startswith("val/") and isinstance(v, float))
    print(f"Best checkpoint: {best or '(none saved)'}")
    print(f"Validation: {val}")
