"""Package attributes that load on first use (PEP 562), so that a package's torch-free modules
(the ONNX runtime's, a task's runtime class and endpoint, the tokenizer) import without torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``homes`` (name -> the module that
    defines it) is imported from there when first read."""

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook's name)
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name]), name)

    return __getattr__
