"""An export directory (``python -m tasks.export``) opened for inference: its manifest, its
tokenizer(s) and one onnxruntime session per graph, on the execution providers asked for.

Legend: B batch, T time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from nlp_lstm.data.tokenizer import Tokenizer

#: The export layout this runtime reads (``nlp_lstm.export.EXPORT_FORMAT``, not imported: that
#: module imports torch).
EXPORT_FORMAT = 1
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


def pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences: tokens (B, T) int64 and lengths (B,) int64 (as
    ``nlp_lstm.data.batching.pad_sequences``)."""
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)  # (B,)
    if int(lengths.min()) < 1:
        raise ValueError("every sequence must hold at least one token")
    tokens = np.full((len(sequences), int(lengths.max())), pad_id, dtype=np.int64)  # (B, T)
    for row, seq in enumerate(sequences):
        tokens[row, : len(seq)] = seq
    return tokens, lengths


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
        if found != EXPORT_FORMAT:
            raise ValueError(f"{manifest_path} has export format {found!r}; this runtime reads "
                             f"format {EXPORT_FORMAT}: export the checkpoint again")
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
        self.tokenizer = self._tokenizer("tokenizer")
        self.target_tokenizer = (self._tokenizer("target_tokenizer")
                                 if "target_tokenizer" in self.manifest else self.tokenizer)
        self.max_length: int = int(self.manifest["max_length"])

    def _tokenizer(self, key: str) -> Tokenizer:
        file = self.path / self.manifest[key]
        if not file.is_file():
            raise ValueError(f"{self.path} lacks {self.manifest[key]}, named in its manifest")
        return Tokenizer.load(file)

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph: inputs by name -> outputs by name. Feeds the graph does not read
        are left out (the exporter drops inputs a model ignores, e.g. the decoder's ``feed``
        without input feeding)."""
        session = self.sessions[graph]
        names = [o.name for o in session.get_outputs()]
        inputs = {i.name: feeds[i.name] for i in session.get_inputs()}
        return dict(zip(names, session.run(names, inputs), strict=True))
