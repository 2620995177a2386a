"""``nlp_lstm.load``: one call for a trained model, whether a checkpoint or an ONNX export.

    import nlp_lstm
    model = nlp_lstm.load("runs/sst2/checkpoints/best.ckpt")   # or an export folder
    results, truncated = model.predict(["a fine film ."])

Both kinds answer ``predict(inputs) -> (one JSON-serializable result per input, how many inputs
the length guard cut)`` with the same results: the checkpoint's PyTorch model (eval mode, CPU)
and the export's torch-free runtime share the task's rules of inference. Each also keeps its
task's own calls (``translate``, ``generate``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp_lstm.drivers.registry import load_export, load_model
from nlp_lstm.training.checkpoint import CheckpointError


def load(path: str | Path, task: str | None = None,
         providers: str | Sequence[str] | None = None, threads: int | None = None) -> Any:
    """The model saved at ``path``: a checkpoint file (``nlp-lstm train`` writes them) gives the
    PyTorch model, an export directory (``nlp-lstm export``) the ONNX runtime model.

    ``task``: if given, an error unless the model is of that task; ``providers``, ``threads``:
    onnxruntime's execution providers and intra-op threads (exports only).
    Raises ``CheckpointError`` (a ``ValueError``) for a missing path or an unreadable file.
    """
    path = Path(path)
    if path.is_dir():
        return load_export(path, providers=providers, threads=threads, task=task)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file or export directory")
    if providers is not None or threads is not None:
        raise ValueError(f"{path} is a checkpoint: providers and threads apply to ONNX exports "
                         "(nlp-lstm export) only")
    return load_model(path, task)
