"""Fitted state: what a data module learns from the training split and a model then carries
(in its checkpoint, its export, its runtime), so that serving transforms inputs exactly as
training did. A tokenizer is one kind; a per-feature scaler is another.

Torch-free (standard library only): the ONNX runtime reads fitted state too.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Fitted", "load_fitted", "save_fitted"]


@runtime_checkable
class Fitted(Protocol):
    """State fitted on the training split that travels with a model as plain JSON text.

    ``from_json(to_json())`` must give back an equal object, and fitting must be deterministic
    (every DDP rank fits its own copy when there is no cache).
    """

    def to_json(self) -> str:
        """The state as JSON text."""
        ...

    @classmethod
    def from_json(cls, text: str, /) -> Self:
        """The state from ``to_json``'s text."""
        ...


F = TypeVar("F", bound=Fitted)


def save_fitted(fitted: Fitted, path: Path) -> None:
    """Write ``fitted.to_json()`` to ``path`` atomically (through a temporary file and a
    rename): a reader, such as another DDP rank, never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")  # not the pid: it repeats across nodes
    tmp.write_text(fitted.to_json(), encoding="utf-8")
    os.replace(tmp, path)


def load_fitted(kind: type[F], path: Path) -> F:
    """The ``kind`` object that ``save_fitted`` wrote to ``path``."""
    return kind.from_json(path.read_text(encoding="utf-8"))
