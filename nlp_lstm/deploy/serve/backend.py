"""What the server runs: a model (a PyTorch ``TaskModule`` or its ``nlp_lstm.deploy.runtime``
counterpart, which offer the same calls) with its task's endpoint.

The server talks to nothing else, so another runtime plugs in by offering the calls its task's
endpoint makes. Models raise ValueError for bad input (a prompt with characters a character
model never saw, bad sampling values); the server answers those with 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nlp_lstm.deploy.serve.endpoint import Endpoint


@dataclass
class Backend:
    """A model to serve. ``task`` names it in answers; ``model.max_length`` is the longest
    input the model reads whole (the default input-length limit)."""

    task: str
    model: Any
    endpoint: Endpoint

    def __post_init__(self) -> None:
        if self.endpoint is None:
            raise ValueError(f"the {self.task!r} task has no HTTP endpoint; it cannot be served")

    @property
    def max_length(self) -> int:
        return int(self.model.max_length)
