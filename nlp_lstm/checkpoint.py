"""Loading checkpoints safely: tensors and plain data only, model classes from an allowlist
(the task's ``models``, which the caller passes: ``Task.load`` or ``nlp_lstm.registry``)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nlp_lstm.module import TaskModule, check_format


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, unsafe, or of the wrong task."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, loaded with ``weights_only=True`` on CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (expected a .ckpt file)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():
            raise CheckpointError(
                f"refusing to load {path}: it holds objects other than tensors and plain data"
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt: {e})") from None
    except Exception as e:  # torch raises many types for truncated or foreign files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("nlp_lstm"), dict):
        raise CheckpointError(f"{path} is not an nlp-lstm checkpoint (no 'nlp_lstm' metadata)")
    return checkpoint


def load_model(path: str | Path, task: str, models: Sequence[type[TaskModule]]) -> TaskModule:
    """Rebuild the model stored in a checkpoint of ``task``, in eval mode, on CPU; its class
    must be one of ``models`` (by name)."""
    return build_model(read_checkpoint(path), path, task, models)


def build_model(checkpoint: dict[str, Any], path: str | Path, task: str,
                models: Sequence[type[TaskModule]]) -> TaskModule:
    """``load_model`` of a checkpoint already read (``read_checkpoint``) from ``path``."""
    meta = checkpoint["nlp_lstm"]
    if meta.get("task") != task:
        raise CheckpointError(
            f"{path} is a {meta.get('task')!r} checkpoint, expected a {task!r} one"
        )
    try:
        check_format(meta, str(path))
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    cls = next((m for m in models if m.__name__ == meta.get("model")), None)
    if cls is None:
        raise CheckpointError(f"{path} names an unknown {task} model {meta.get('model')!r}; "
                              f"known: {sorted(m.__name__ for m in models)}")
    try:
        model = cls(**checkpoint["hyper_parameters"])
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        reason = str(e).splitlines()[0]
        raise CheckpointError(f"{path} does not match {cls.__name__}: {reason}") from None
    return model.eval()
