"""Inference on ONNX exports (``nlp-lstm export``) with onnxruntime and numpy only: no torch, no
Lightning. The same calls as the PyTorch models:

    from nlp_lstm.deploy import runtime
    model = runtime.load("export/")                  # providers=["cuda"] for a GPU
    model.predict(["a fine film ."])                 # every task
    model.translate(["ein hund ."], beam_size=5)     # translation: greedy or beam search
    model.generate("ROMEO:", temperature=0.8, seed=1)  # generation: sampling, stop strings

This package is generic: an export's manifest names its task, and the task's runtime class
(``nlp_lstm.<task>.runtime``, torch-free) is found through the ``nlp_lstm.runtimes`` entry
points that installed packages declare (ours in ``pyproject.toml``), so a task from another
package plugs in the same way, and loading a directory never imports code it names. A caller
that holds the class (the task registry) passes it as ``model_class``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from nlp_lstm.deploy.runtime.graphs import (
    PROVIDERS,
    ExportedModel,
    ExportedTask,
    pad,
    resolve_providers,
)

#: The entry-point group naming each task's runtime class: ``task = "module:Class"``.
ENTRY_POINTS = "nlp_lstm.runtimes"


def runtime_classes() -> dict[str, Any]:
    """The installed runtime classes' entry points, by task name (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def load(path: str | Path, providers: str | Sequence[str] | None = None,
         threads: int | None = None, task: str | None = None,
         model_class: type | None = None) -> Any:
    """The model of an export directory, for its task. ``providers``: execution providers
    (``"cpu"``, ``"cuda"``, ``"tensorrt"`` or full onnxruntime names; default CPU);
    ``threads``: onnxruntime's intra-op threads (default: its own); ``task``: if given, a
    ValueError unless the export is of that task; ``model_class``: the task's runtime class
    (default: the installed one for the export's task)."""
    export = ExportedModel(path, providers, threads, task=task)
    if model_class is None:
        known = runtime_classes()
        if export.task not in known:
            raise ValueError(f"{path} is a {export.task!r} export; the installed runtimes know "
                             f"{sorted(known)}")
        model_class = known[export.task].load()
    return model_class(export)


__all__ = ["ENTRY_POINTS", "PROVIDERS", "ExportedModel", "ExportedTask", "load", "pad",
           "resolve_providers", "runtime_classes"]
