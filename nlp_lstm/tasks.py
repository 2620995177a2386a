"""The task registry: what the generic train, evaluate, predict and checkpoint loading need to
know of each task, and nothing else. Adding a task means adding its package and one ``Task``
here (or ``register``-ing it); no generic module changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from nlp_lstm.data.base import TextDataModule
from nlp_lstm.generation import GenerationDataModule, LanguageModel
from nlp_lstm.module import TaskModule
from nlp_lstm.sentiment import (
    BagOfWordsClassifier,
    DistilledClassifier,
    SentimentClassifier,
    SentimentDataModule,
    TextClassifier,
)
from nlp_lstm.translation import Seq2SeqTranslator, TranslationDataModule


@dataclass(frozen=True)
class Task:
    """One task as the generic commands see it.

    Attributes:
        name: the ``task.name`` of configs and checkpoints.
        datamodule: the data module class every ``data=`` option of the task builds.
        models: the model classes a checkpoint of the task may name. Loading resolves names
            here and nowhere else, so a checkpoint can never make us import arbitrary code.
        model_inputs: what a new model learns from the data module, as constructor keyword
            arguments (the tokenizer(s) as JSON, label names, ...).
        prepare_eval: builds, from an eval config, the data module that evaluates a trained
            model (it passes the model's tokenizer(s) and checks that data and model agree),
            and applies the config's task-specific evaluation settings to the model.
        report: prints what the metrics table does not show (e.g. a confusion matrix); None:
            nothing more.
    """

    name: str
    datamodule: type[TextDataModule]
    models: tuple[type[TaskModule], ...]
    model_inputs: Callable[[Any], dict[str, Any]]
    prepare_eval: Callable[[DictConfig, Any], TextDataModule]
    report: Callable[[dict[str, Any], Any, Console], None] | None = None

    def model_class(self, name: str) -> type[TaskModule] | None:
        return next((cls for cls in self.models if cls.__name__ == name), None)


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add (or replace) a task; returns it."""
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]


# ------------------------------------------------------------------ sentiment
def _sentiment_eval(cfg: DictConfig, model: TextClassifier) -> SentimentDataModule:
    data = cfg.data
    if "labels" in data.source:  # user files: the checkpoint fixes the class order
        data.source.labels = list(model.labels)
    datamodule = instantiate(data, trained_tokenizer=model.tokenizer.to_json())
    if list(datamodule.labels) != list(model.labels):
        raise ValueError(f"the data's labels {list(datamodule.labels)} differ from the "
                         f"checkpoint's {list(model.labels)}")
    return datamodule


def _confusion(metrics: dict[str, Any], model: TextClassifier, console: Console) -> None:
    confusion = next((v for k, v in metrics.items() if k.endswith("/confusion")), None)
    if confusion is None:
        return
    table = Table(title="Confusion (rows: true, columns: predicted)")
    table.add_column("")
    for label in model.labels:
        table.add_column(label, justify="right")
    for label, row in zip(model.labels, confusion, strict=True):
        table.add_row(label, *map(str, row))
    console.print(table)


register(Task(
    name="sentiment",
    datamodule=SentimentDataModule,
    models=(SentimentClassifier, BagOfWordsClassifier, DistilledClassifier),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json(), "labels": list(dm.labels)},
    prepare_eval=_sentiment_eval,
    report=_confusion,
))


# ---------------------------------------------------------------- translation
def _tokenizers(model: Seq2SeqTranslator) -> dict[str, str]:
    """The model's tokenizers as data module arguments (a joint vocabulary is one)."""
    tokenizers = {"trained_tokenizer": model.tokenizer.to_json()}
    if model.target_tokenizer is not model.tokenizer:
        tokenizers["trained_target_tokenizer"] = model.target_tokenizer.to_json()
    return tokenizers


def _translation_eval(cfg: DictConfig, model: Seq2SeqTranslator) -> TranslationDataModule:
    for key in ("beam_size", "length_penalty", "max_length_ratio", "max_length_offset"):
        if cfg.get(key) is not None:
            setattr(model, key, cfg[key])
    model.check_decoding(model.beam_size, 1, model.max_length_ratio, model.max_length_offset)
    return instantiate(cfg.data, **_tokenizers(model))


def _signatures(metrics: dict[str, Any], model: Seq2SeqTranslator, console: Console) -> None:
    for key, value in metrics.items():
        if key.endswith("_signature"):
            console.print(f"sacreBLEU {key.split('/')[-1].removesuffix('_signature')} "
                          f"signature: {value}", highlight=False, soft_wrap=True)


register(Task(
    name="translation",
    datamodule=TranslationDataModule,
    models=(Seq2SeqTranslator,),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json(),
                             "target_tokenizer": None if dm.joint
                             else dm.target_tokenizer.to_json()},
    prepare_eval=_translation_eval,
    report=_signatures,
))


# ----------------------------------------------------------------- generation
register(Task(
    name="generation",
    datamodule=GenerationDataModule,
    models=(LanguageModel,),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json(), "separator": dm.separator},
    prepare_eval=lambda cfg, model: instantiate(cfg.data,
                                                trained_tokenizer=model.tokenizer.to_json()),
))
