"""Training: build data, model and trainer from a composed config, fit, and report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities import rank_zero_only

from nlp_lstm.cli import check_encoder_choice
from nlp_lstm.module import quiet_loops
from nlp_lstm.precision import check_precision
from nlp_lstm.registry import get_task
from nlp_lstm.report import print_metrics
from nlp_lstm.task import Task
from nlp_lstm.transfer import InitFrom, Source, adopt_tokenizer, init_from, read_sources


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
    transfer = _read_init_from(cfg)
    datamodule = instantiate(cfg.data)
    if not isinstance(datamodule, task.datamodule):
        raise ValueError(f"task={task.name} needs data served by {task.datamodule.__name__}, "
                         f"but the data config builds a {type(datamodule).__name__}; pick a "
                         f"data= option of the {task.name} task")
    datamodule.prepare_data()  # Lightning runs it again under the trainer: a no-op by then
    datamodule.setup("fit")
    model = instantiate(cfg.model, **task.model_inputs(datamodule), _convert_="all")
    if transfer is not None:
        _apply_init_from(cfg, model, *transfer, out)
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
