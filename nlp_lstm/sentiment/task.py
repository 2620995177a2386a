"""The sentiment task: labeled text to a class."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from nlp_lstm.core.task import Task
from nlp_lstm.sentiment import endpoint, export
from nlp_lstm.sentiment.data import SentimentDataModule
from nlp_lstm.sentiment.distill import DistilledClassifier
from nlp_lstm.sentiment.module import BagOfWordsClassifier, SentimentClassifier, TextClassifier
from nlp_lstm.sentiment.runtime import OnnxClassifier


def prepare_eval(cfg: DictConfig, model: TextClassifier) -> SentimentDataModule:
    data = cfg.data
    if "labels" in data.source:  # user files: the checkpoint fixes the class order
        data.source.labels = list(model.labels)
    datamodule = instantiate(data, trained_tokenizer=model.tokenizer.to_json())
    if list(datamodule.labels) != list(model.labels):
        raise ValueError(f"the data's labels {list(datamodule.labels)} differ from the "
                         f"checkpoint's {list(model.labels)}")
    return datamodule


def confusion(metrics: dict[str, Any], model: TextClassifier, console: Console) -> None:
    matrix = next((v for k, v in metrics.items() if k.endswith("/confusion")), None)
    if matrix is None:
        return
    table = Table(title="Confusion (rows: true, columns: predicted)")
    table.add_column("")
    for label in model.labels:
        table.add_column(label, justify="right")
    for label, row in zip(model.labels, matrix, strict=True):
        table.add_row(label, *map(str, row))
    console.print(table)


TASK = Task(
    name="sentiment",
    datamodule=SentimentDataModule,
    models=(SentimentClassifier, BagOfWordsClassifier, DistilledClassifier),
    model_inputs=lambda dm: {"tokenizer": dm.tokenizer.to_json(), "labels": list(dm.labels)},
    prepare_eval=prepare_eval,
    report=confusion,
    export=export.build,
    runtime=OnnxClassifier,
    endpoint=endpoint.ENDPOINT,
    keep_float=(),  # the embedding is only looked up: int8 rows lose nothing measurable
)
