"""How the embedded corpora are split: the first 80% train, the next 10% val, the rest test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

Item = TypeVar("Item")
SPLITS = ("train", "val", "test")


def take_split(items: Sequence[Item], split: str, corpus: str) -> list[Item]:
    """The part of ``items`` that forms ``split``; a ValueError names an unknown split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for the {corpus}; expected one of {SPLITS}")
    n_train, n_val = int(0.8 * len(items)), int(0.1 * len(items))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val),
              "test": (n_train + n_val, len(items))}
    lo, hi = bounds[split]
    return list(items[lo:hi])
