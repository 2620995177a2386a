"""Reading checkpoints safely, one way for every reader: tensors and plain data only, model
classes from an allowlist (the task's ``models``, which the caller passes), one error type.

``read_checkpoint`` is the one function that reads a checkpoint file: loading a model
(``build_model``: ``Task.load``, ``nlp_lstm.drivers.registry``, ``nlp_lstm.load``), starting
from another model's weights (``nlp_lstm.training.transfer``) and a distillation teacher all go
through it, and all fail with ``CheckpointError``."""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nlp_lstm.training.module import TaskModule, check_format


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, unsafe, or of the wrong task."""


def read_checkpoint(path: str | Path, role: str = "") -> dict[str, Any]:
    """The checkpoint's contents, loaded with ``weights_only=True`` on CPU, plus ``"sha256"``:
    the digest of the bytes that were loaded (read once, so the two agree). ``role``: what the
    file is to the caller, e.g. ``"model.init_from.ckpt"``; it starts every error message."""
    path = Path(path)
    where = f"{role}: " if role else ""
    if not path.is_file():
        raise CheckpointError(f"{where}checkpoint not found: {path} (expected a .ckpt file)")
    data = path.read_bytes()
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():
            raise CheckpointError(f"{where}refusing to load {path}: it holds objects other than "
                                  "tensors and plain data") from None
        raise CheckpointError(f"{where}{path} is not a readable checkpoint (corrupt: {e})"
                              ) from None
    except Exception as e:  # torch raises many types for truncated or foreign files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{where}{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("nlp_lstm"), dict):
        raise CheckpointError(f"{where}{path} is not an nlp-lstm checkpoint (no 'nlp_lstm' "
                              "metadata); expected one written by `nlp-lstm train`")
    checkpoint["sha256"] = hashlib.sha256(data).hexdigest()
    return checkpoint


def build_model(checkpoint: dict[str, Any], path: str | Path, task: str,
                models: Sequence[type[TaskModule]]) -> TaskModule:
    """The model stored in a checkpoint of ``task`` already read (``read_checkpoint``) from
    ``path``, in eval mode, on CPU; its class must be one of ``models`` (by name)."""
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
        model.on_load_checkpoint(checkpoint)  # what Lightning restores too: provenance, data
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        reason = str(e).splitlines()[0]
        raise CheckpointError(f"{path} does not match {cls.__name__}: {reason}") from None
    return model.eval()
