"""Inference on ONNX exports (``python -m tasks.export``) with onnxruntime, tokenizers and
numpy only: no torch, no Lightning. The same calls as the PyTorch models:

    from nlp_lstm import runtime
    model = runtime.load("export/")                  # providers=["cuda"] for a GPU
    model.predict_texts(["a fine film ."])           # sentiment
    model.translate(["ein hund ."], beam_size=5)     # translation: greedy or beam search
    model.generate("ROMEO:", temperature=0.8, seed=1)  # generation: sampling, stop strings

Each task's class mirrors its PyTorch module (``predict_texts``; ``translate``, ``decode``;
``start_generation``, ``generate``, ``encode_prompt``) and shares its torch-free rules
(``nlp_lstm.inference``, ``nlp_lstm.text_stream``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nlp_lstm.runtime.classifier import OnnxClassifier
from nlp_lstm.runtime.graphs import PROVIDERS, ExportedModel, resolve_providers
from nlp_lstm.runtime.language_model import OnnxLanguageModel
from nlp_lstm.runtime.translator import OnnxTranslator

OnnxModel = OnnxClassifier | OnnxTranslator | OnnxLanguageModel
CLASSES = {"sentiment": OnnxClassifier, "translation": OnnxTranslator,
           "generation": OnnxLanguageModel}


def load(path: str | Path, providers: str | Sequence[str] | None = None,
         threads: int | None = None, task: str | None = None) -> OnnxModel:
    """The model of an export directory, for its task. ``providers``: execution providers
    (``"cpu"``, ``"cuda"``, ``"tensorrt"`` or full onnxruntime names; default CPU);
    ``threads``: onnxruntime's intra-op threads (default: its own); ``task``: if given, a
    ValueError unless the export is of that task."""
    export = ExportedModel(path, providers, threads, task=task)
    if export.task not in CLASSES:
        raise ValueError(f"{path} is a {export.task!r} export; the runtime knows {sorted(CLASSES)}")
    return CLASSES[export.task](export)


__all__ = ["PROVIDERS", "ExportedModel", "OnnxClassifier", "OnnxLanguageModel", "OnnxModel",
           "OnnxTranslator", "load", "resolve_providers"]
