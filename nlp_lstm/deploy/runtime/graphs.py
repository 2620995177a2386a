"""An export directory (``nlp-lstm export``) opened for inference: its manifest, its fitted
state (tokenizers, scalers: JSON a task's runtime class reads) and one onnxruntime session per
graph, on the execution providers asked for.

Legend: B batch, T time, F features.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

#: The export layout this runtime reads (``nlp_lstm.deploy.export.EXPORT_FORMAT``, not imported:
#: that
#: module imports torch). Format 1 (nlp-lstm 0.2.0) named its tokenizers at the top level of the
#: manifest; it is read as format 2's ``fitted`` state.
EXPORT_FORMAT = 2
READS_FORMATS = (1, 2)
#: Short names of the execution providers (``--provider``); full names are accepted too.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


def resolve_providers(providers: str | Sequence[str] | None) -> list[str]:
    """Provider names (short or full, e.g. ``"cuda"`` or ``"CUDAExecutionProvider"``) -> the
    full names, CPU appended as the fallback for operators the others lack. None: CPU only. A
    ValueError for a provider this onnxruntime build does not have, naming those it has."""
    if providers is None:
        providers = ["cpu"]
    elif isinstance(providers, str):
        providers = [providers]
    available = ort.get_available_providers()
    names = []
    for provider in providers:
        name = PROVIDERS.get(str(provider).lower(), provider)
        if name not in available:
            raise ValueError(f"execution provider {provider!r} is not available in this "
                             f"onnxruntime build; available: {available} (GPU providers need "
                             "the onnxruntime-gpu package and a GPU)")
        if name not in names:
            names.append(name)
    if "CPUExecutionProvider" not in names:
        names.append("CPUExecutionProvider")
    return names


def pad(sequences: Sequence[Any], pad_value: float = 0,
        dtype: Any = np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad sequences of (T_i,) ids or (T_i, F...) features: padded (B, T, ...) of
    ``dtype`` and lengths (B,) int64 (as ``nlp_lstm.data.batching.pad_sequences``)."""
    if not len(sequences):
        raise ValueError("cannot pad an empty batch")
    arrays = [np.asarray(s, dtype=dtype) for s in sequences]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)  # (B,)
    if int(lengths.min()) < 1:
        raise ValueError("every sequence must hold at least one step")
    features = arrays[0].shape[1:]
    if any(a.shape[1:] != features for a in arrays):
        raise ValueError(f"every sequence must have the feature shape {features}, got "
                         f"{sorted({a.shape[1:] for a in arrays})}")
    padded = np.full((len(arrays), int(lengths.max()), *features), pad_value,
                     dtype=dtype)  # (B, T, ...)
    for row, a in enumerate(arrays):
        padded[row, : len(a)] = a
    return padded, lengths


class ExportedModel:
    """The graphs, tokenizer(s) and settings of an export directory.

    Args:
        path: the directory ``tasks.export`` wrote.
        providers: execution providers (see ``resolve_providers``); None: CPU.
        threads: onnxruntime's intra-op threads; None: its default (the physical cores).
        task: if given, a ValueError unless the export is of this task.
    """

    def __init__(self, path: str | Path, providers: str | Sequence[str] | None = None,
                 threads: int | None = None, task: str | None = None) -> None:
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not self.path.is_dir():
            raise ValueError(f"ONNX export not found: {self.path} (expected a directory written "
                             "by python -m tasks.export)")
        if not manifest_path.is_file():
            raise ValueError(f"{self.path} has no manifest.json: not an export of "
                             "python -m tasks.export")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{manifest_path} is not valid JSON ({e})") from None
        found = self.manifest.get("format") if isinstance(self.manifest, dict) else None
        if found not in READS_FORMATS:
            raise ValueError(f"{manifest_path} has export format {found!r}; this runtime reads "
                             f"formats {list(READS_FORMATS)}: export the checkpoint again")
        if found == 1:
            self.manifest["fitted"] = {
                name: {"file": self.manifest[name]}
                for name in ("tokenizer", "target_tokenizer") if name in self.manifest}
        self.task: str = self.manifest["task"]
        if task is not None and self.task != task:
            raise ValueError(f"{self.path} is a {self.task!r} export, expected a {task!r} one")
        self.providers = resolve_providers(providers)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no notes on provider assignment
        self.sessions: dict[str, ort.InferenceSession] = {}
        for name, graph in self.manifest["graphs"].items():
            file = self.path / graph["file"]
            if not file.is_file():
                raise ValueError(f"{self.path} lacks {graph['file']}, named in its manifest")
            try:
                self.sessions[name] = ort.InferenceSession(str(file), options,
                                                           providers=self.providers)
            except Exception as e:  # onnxruntime raises its own types for unreadable graphs
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ValueError(f"cannot load {file}: {reason}") from None
        self.fitted: dict[str, str] = {
            name: self._read(entry["file"]) for name, entry in self.manifest["fitted"].items()}
        self.max_length: int = int(self.manifest["max_length"])

    def _read(self, name: str) -> str:
        file = self.path / name
        if not file.is_file():
            raise ValueError(f"{self.path} lacks {name}, named in its manifest")
        return file.read_text(encoding="utf-8")

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph: inputs by name -> outputs by name. Feeds the graph does not read
        are left out (the exporter drops inputs a model ignores, e.g. the decoder's ``feed``
        without input feeding)."""
        session = self.sessions[graph]
        names = [o.name for o in session.get_outputs()]
        inputs = {i.name: feeds[i.name] for i in session.get_inputs()}
        return dict(zip(names, session.run(names, inputs), strict=True))


class ExportedTask:
    """Base of a task's runtime class (``nlp_lstm.<task>.runtime``): the export it runs, opened
    here from a directory (or given open), and checked to be of the class's ``task``.

    Args:
        path: an export directory, or an ``ExportedModel`` already open.
        providers: execution providers (see ``resolve_providers``); None: CPU.
        threads: onnxruntime's intra-op threads; None: its default.
    """

    task: str = ""

    def __init__(self, path: str | Path | ExportedModel, providers: Any = None,
                 threads: int | None = None) -> None:
        self.export = path if isinstance(path, ExportedModel) else ExportedModel(
            path, providers, threads, task=self.task)
        self.max_length = self.export.max_length
