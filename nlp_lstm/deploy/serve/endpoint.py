"""A task's HTTP endpoint as the generic server (``app.py``) runs it, and the server's limits.

Standard library only: each task package defines its endpoint (``nlp_lstm.<task>.endpoint``)
without importing FastAPI, and the server holds no task name. An endpoint either *batches*
(``run``: the inputs of concurrent requests that share a key go through the model together) or
runs one request at a time (``start``: a ``Run`` whose pieces may be streamed as NDJSON).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ServeSettings:
    """The server's limits. ``max_input_tokens`` None means the model's ``max_length``."""

    max_batch_size: int = 32
    max_wait_ms: float = 10.0
    max_input_tokens: int | None = None
    workers: int = 1
    max_queue: int = 1024
    max_body_bytes: int = 1 << 20
    max_new_tokens: int = 1024
    max_beam_size: int = 16
    max_samples: int = 16

    def check(self, max_length: int) -> None:
        """ValueError naming the first bad setting; ``max_length`` is the model's."""
        for name in ("max_batch_size", "workers", "max_queue", "max_body_bytes",
                     "max_new_tokens", "max_beam_size", "max_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        limit = self.max_input_tokens
        if limit is not None and not 1 <= limit <= max_length:
            raise ValueError(f"max_input_tokens must be in [1, {max_length}] (the "
                             f"model's max_length), got {limit}")


@dataclass(frozen=True)
class Call:
    """One request, parsed and checked: the inputs the length guard measures, the key they
    batch under (e.g. a beam size), the options of an unbatched run, whether to stream, and how
    many results it asks for (for the batch-size metric; None: one per input)."""

    inputs: list[Any]
    key: Hashable = None
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    size: int | None = None


class Run(Protocol):
    """One unbatched request under way: ``pieces`` yields, after every step, the text each
    result added ("" where nothing became final); once exhausted, ``results()`` answers."""

    pieces: Iterator[list[str]]

    def results(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Endpoint:
    """A task's route.

    Attributes:
        path: the route, e.g. ``/predict``.
        parse: the request's JSON object and the server's settings -> a ``Call``; raises
            ``nlp_lstm.deploy.serve.validation.RequestError`` (422, 413) for bad fields.
        length: (model, one input) -> its length in the model's units, for the input-length
            guard (413 over ``--max-input-tokens``); ValueError for an input the model refuses.
        run: batched: (model, inputs, key) -> one JSON-able result per input.
        start: unbatched: (model, call) -> a ``Run``; checks and computes nothing yet.
        describe: index of an input -> how a 413 message names it.
        unit: what ``length`` counts, for messages.
    """

    path: str
    parse: Callable[[Mapping[str, Any], ServeSettings], Call]
    length: Callable[[Any, Any], int]
    run: Callable[[Any, list[Any], Hashable], list[dict[str, Any]]] | None = None
    start: Callable[[Any, Call], Run] | None = None
    describe: Callable[[int], str] = field(default=lambda i: f"texts[{i}]")
    unit: str = "tokens"

    def __post_init__(self) -> None:
        if (self.run is None) == (self.start is None):
            raise ValueError(f"endpoint {self.path}: give exactly one of run (batched) and "
                             "start (one request at a time)")


def text_length(model: Any, text: str) -> int:
    """The tokens a text model (one with a ``tokenizer``) reads for ``text``: the length of
    text tasks' inputs."""
    return len(model.tokenizer.encode(text))
