"""What the server runs: a small backend interface, and its implementations for checkpoints
(PyTorch) and for ONNX exports (``nlp_lstm.runtime``: onnxruntime, no torch models).

The HTTP layer talks to nothing else, so another runtime plugs in by offering the same
attributes and methods. Backends raise ValueError for bad input (a prompt with characters
a character model never saw, bad sampling values); the server answers those with 422.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

TASK_ENDPOINTS = {"sentiment": "/predict", "translation": "/translate", "generation": "/generate"}


@dataclass
class GenerationRun:
    """One generation request under way: ``pieces`` yields, after every step, the text each
    sample added ("" where nothing became final); once it is exhausted, ``results()`` gives per
    sample ``{"prompt", "text", "tokens", "seconds"}`` as ``generate`` returns it."""

    pieces: Iterator[list[str]]
    prompt: str
    _streams: list[Any]
    _start: float = field(default_factory=time.perf_counter)

    def results(self) -> list[dict[str, Any]]:
        seconds = round(time.perf_counter() - self._start, 4)
        return [{"prompt": self.prompt, "text": s.text, "tokens": s.tokens, "seconds": seconds}
                for s in self._streams]


class Backend(Protocol):
    """What the server needs of a model. ``task`` is ``sentiment``, ``translation`` or
    ``generation``; ``max_length`` the longest input (tokens) the model reads whole."""

    task: str
    max_length: int

    def count_tokens(self, text: str) -> int:
        """The number of tokens the model reads for ``text`` (a generation prompt included)."""

    def predict_texts(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Sentiment: one ``{"text", "label", "probs"}`` per text."""

    def translate(self, texts: Sequence[str], beam_size: int | None) -> list[dict[str, Any]]:
        """Translation: one ``{"source", "translation", "score"}`` per text (the best
        hypothesis); ``beam_size`` None is the model's default."""

    def start_generation(self, prompt: str, **settings: Any) -> GenerationRun:
        """Generation: check the settings and the prompt (ValueError), compute nothing yet."""


class ModelBackend:
    """The ``Backend`` calls over a model that has the task's methods (``predict_texts``,
    ``translate``, ``encode_prompt``, ``start_generation``): a PyTorch ``TaskModule`` or its
    ``nlp_lstm.runtime`` counterpart. Subclasses set ``task``, ``model`` and ``max_length``."""

    task: str
    model: Any
    max_length: int

    def count_tokens(self, text: str) -> int:
        if self.task == "generation":
            ids, cut = self.model.encode_prompt(text)  # the separator for an empty prompt
            return len(ids) + cut
        return len(self.model.tokenizer.encode(text))

    def predict_texts(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        return self.model.predict_texts(texts)[0]

    def translate(self, texts: Sequence[str], beam_size: int | None) -> list[dict[str, Any]]:
        # The same fields as Seq2SeqTranslator.predict_texts, with a beam size of choice.
        results, _ = self.model.translate(texts, beam_size=beam_size)
        return [{"source": text, "translation": r[0]["translation"], "score": r[0]["score"]}
                for text, r in zip(texts, results, strict=True)]

    def start_generation(self, prompt: str, **settings: Any) -> GenerationRun:
        streams, pieces = self.model.start_generation(prompt, **settings)
        return GenerationRun(pieces, prompt, streams)


class CheckpointBackend(ModelBackend):
    """A backend over a PyTorch checkpoint (``nlp_lstm.checkpoint.load_model``)."""

    def __init__(self, path: str | Path) -> None:
        from nlp_lstm.checkpoint import load_model, read_checkpoint

        task = read_checkpoint(path)["nlp_lstm"].get("task")
        if task not in TASK_ENDPOINTS:
            raise ValueError(f"{path} is a {task!r} checkpoint; the server serves "
                             f"{sorted(TASK_ENDPOINTS)}")
        self.task: str = task
        self.model = load_model(path, task=task)
        self.max_length: int = int(self.model.max_length)


class OnnxBackend(ModelBackend):
    """A backend over an ONNX export (``python -m tasks.export``) run by ``nlp_lstm.runtime``
    on the execution ``providers`` (default CPU)."""

    def __init__(self, path: str | Path, providers: str | Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        from nlp_lstm import runtime

        self.model = runtime.load(path, providers=providers, threads=threads)
        self.task: str = self.model.task
        self.max_length: int = int(self.model.max_length)


def load_backend(ckpt: str | Path | None = None, onnx: str | Path | None = None,
                 providers: str | Sequence[str] | None = None) -> Backend:
    """The backend for a checkpoint file or (exclusively) an ONNX export directory."""
    if (ckpt is None) == (onnx is None):
        raise ValueError("give exactly one of a checkpoint (--ckpt PATH) and an ONNX export "
                         "(--onnx DIR)")
    if onnx is not None:
        return OnnxBackend(onnx, providers)
    if providers is not None:
        raise ValueError(f"--provider {providers} applies to --onnx DIR; a checkpoint runs on "
                         "PyTorch")
    return CheckpointBackend(ckpt)
