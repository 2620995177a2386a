"""``Task``: everything the generic layers need of one task, and nothing else.

A task is a package (``nlp_lstm.<task>``: data, network, module, export, runtime, endpoint) and
one ``Task`` that names its parts. Training, evaluation, prediction, checkpoint loading, ONNX
export, the torch-free runtime, HTTP serving and quantization look the task up (the registry,
``nlp_lstm.drivers.registry``, maps names to tasks) and call its hooks, so a new task, text or
numbers,
changes no generic module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from nlp_lstm.training.checkpoint import build_model, read_checkpoint

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from rich.console import Console

    from nlp_lstm.deploy.export import Export
    from nlp_lstm.deploy.serve.endpoint import Endpoint
    from nlp_lstm.training.module import TaskModule


def text_input(line: str) -> str:
    """The command-line input of a text task: the line itself, if it holds text."""
    if not line.strip():
        raise ValueError("is empty or whitespace: expected text")
    return line


class TableIO(Protocol):
    """A task's inputs read from a table file and its results written as one (``nlp-lstm
    predict --csv FILE [--out FILE]``). Both take the loaded model (a ``TaskModule`` or its
    runtime counterpart): it names the columns. ``index_column`` is the table's key column
    (e.g. the date of a time series)."""

    def read(self, path: str | Path, model: Any, index_column: str) -> list[Any]:
        """The inputs of the model's ``predict`` that the file holds; ValueError (naming the
        file, the line or the column) for a table the model cannot read."""
        ...

    def write(self, results: Sequence[dict[str, Any]], out: TextIO, model: Any,
              index_column: str) -> None:
        """The results of ``predict`` as a table, to the open text stream ``out``."""
        ...


@dataclass(frozen=True)
class Task:
    """One task as the generic layers see it.

    Attributes:
        name: the ``task.name`` of configs, checkpoints and exports.
        datamodule: the data module class every ``data=`` option of the task builds.
        models: the model classes a checkpoint of the task may name. Loading resolves names
            here and nowhere else, so a checkpoint can never make us import arbitrary code.
        model_inputs: what a new model learns from the data module, as constructor keyword
            arguments (its fitted state as JSON: tokenizers, scalers; label names, ...).
        prepare_eval: builds, from an eval config, the data module that evaluates a trained
            model (it passes the model's fitted state and checks that data and model agree),
            and applies the config's task-specific evaluation settings to the model.
        report: prints what the metrics table does not show (e.g. a confusion matrix); None:
            nothing more.
        export: builds the model's ONNX graphs, fitted state and settings
        (``nlp_lstm.deploy.export``
            writes them); None: the task has no export.
        runtime: the torch-free class that runs an export (``cls(ExportedModel)``, with the
            model's ``predict`` and ``max_length``); None: no runtime.
        endpoint: the HTTP route the server offers (``nlp_lstm.deploy.serve.endpoint``); None: not
            served.
        parse_input: one command-line input (an argument or a line of a file) -> what the
            model's ``predict`` takes; ValueError saying what was expected.
        keep_float: the module kinds int8 quantization leaves in float32 (``"embedding"``,
            ``"linear"``, ``"lstm"``, ``"gru"``): an embedding only looked up quantizes well, a
            tied one (an output layer too) does not.
        table: reads inputs from a table file and writes results as one (``TableIO``); None:
            the task takes no tables.
    """

    name: str
    datamodule: type
    models: tuple[type[TaskModule], ...]
    model_inputs: Callable[[Any], dict[str, Any]]
    prepare_eval: Callable[[DictConfig, Any], Any]
    report: Callable[[dict[str, Any], Any, Console], None] | None = None
    export: Callable[[Any], Export] | None = None
    runtime: type | None = None
    endpoint: Endpoint | None = None
    parse_input: Callable[[str], Any] = text_input
    keep_float: tuple[str, ...] = ("embedding",)
    table: TableIO | None = None

    def model_class(self, name: str) -> type[TaskModule] | None:
        return next((cls for cls in self.models if cls.__name__ == name), None)

    def load(self, path: str | Path) -> TaskModule:
        """The model of a checkpoint of this task, in eval mode, on CPU."""
        return build_model(read_checkpoint(path), path, self.name, self.models)
