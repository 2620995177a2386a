"""Sentiment on an ONNX export: ``predict`` as ``TextClassifier.predict``.

Legend: B batch, T time, C classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp_lstm.data.guard import LengthGuard
from nlp_lstm.data.tokenizer import Tokenizer
from nlp_lstm.deploy.runtime.graphs import ExportedModel, ExportedTask, pad


class OnnxClassifier(ExportedTask):
    """A sentiment export (``model`` graph: tokens, lengths -> probs)."""

    task = "sentiment"

    def __init__(self, path: str | Path | ExportedModel, providers: Any = None,
                 threads: int | None = None) -> None:
        super().__init__(path, providers, threads)
        self.tokenizer = Tokenizer.from_json(self.export.fitted["tokenizer"])
        self.labels: list[str] = list(self.export.manifest["labels"])

    def predict(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """One ``{"text", "label", "probs"}`` per text, and how many texts were truncated."""
        guard = LengthGuard(self.max_length, self.export.manifest.get("truncation", "head"))
        ids = [guard(self.tokenizer.encode(t) or [self.tokenizer.unk_id]) for t in texts]
        tokens, lengths = pad(ids, self.tokenizer.pad_id)  # (B, T), (B,)
        probs = self.export.run("model", {"tokens": tokens, "lengths": lengths})["probs"]
        results = [
            {"text": text, "label": self.labels[int(p.argmax())],
             "probs": {label: round(float(q), 6) for label, q in zip(self.labels, p, strict=True)}}
            for text, p in zip(texts, probs, strict=True)
        ]
        return results, guard.truncated
