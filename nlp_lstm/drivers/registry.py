"""The task registry: names to ``Task``s (``nlp_lstm.core.task``), and loading a checkpoint or an
export by the task it names.

The one module above the task packages and below the commands: it imports each built-in task's
``Task``; the generic layers below never import it (they are handed the task's hooks), and
another package adds a task with ``register``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp_lstm.core.task import Task
from nlp_lstm.forecasting.task import TASK as FORECASTING
from nlp_lstm.generation.task import TASK as GENERATION
from nlp_lstm.sentiment.task import TASK as SENTIMENT
from nlp_lstm.training.checkpoint import CheckpointError, build_model, read_checkpoint
from nlp_lstm.training.module import TaskModule
from nlp_lstm.translation.task import TASK as TRANSLATION

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add (or replace) a task; returns it."""
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]


for _task in (SENTIMENT, TRANSLATION, GENERATION, FORECASTING):
    register(_task)


def _written_by(checkpoint: dict[str, Any], path: str | Path) -> Task:
    name = checkpoint["nlp_lstm"].get("task")
    if name not in TASKS:
        raise CheckpointError(f"{path} is a {name!r} checkpoint; known tasks: {sorted(TASKS)}")
    return TASKS[name]


def checkpoint_task(path: str | Path) -> Task:
    """The registered task a checkpoint was written by."""
    return _written_by(read_checkpoint(path), path)


def load_checkpoint(path: str | Path, task: str | None = None) -> tuple[Task, TaskModule]:
    """The task and the model (in eval mode, on CPU) of checkpoint ``path``, read once;
    ``task``: if given, a CheckpointError unless the checkpoint is of that task."""
    checkpoint = read_checkpoint(path)
    found = get_task(task) if task is not None else _written_by(checkpoint, path)
    return found, build_model(checkpoint, path, found.name, found.models)


def load_model(path: str | Path, task: str | None = None) -> TaskModule:
    """The model of checkpoint ``path`` (see ``load_checkpoint``)."""
    return load_checkpoint(path, task)[1]


def export_task(path: str | Path) -> Task | None:
    """The registered task of an export directory (its manifest's ``task``)."""
    manifest = Path(path) / "manifest.json"
    try:
        name = json.loads(manifest.read_text(encoding="utf-8")).get("task")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        name = None  # the runtime names the problem
    return TASKS.get(name) if name is not None else None


def load_export(path: str | Path, providers: str | Sequence[str] | None = None,
                threads: int | None = None, task: str | None = None) -> Any:
    """The runtime model of an export directory (``nlp_lstm.deploy.runtime``), with the registered
    task's runtime class (a task registered in this process needs no entry point)."""
    from nlp_lstm.deploy import runtime

    found = export_task(path)
    model_class = found.runtime if found is not None else None
    return runtime.load(path, providers=providers, threads=threads, task=task,
                        model_class=model_class)
