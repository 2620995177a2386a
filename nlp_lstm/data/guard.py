"""The length guard of token id sequences (torch-free: the ONNX runtime uses it too)."""

from __future__ import annotations


class LengthGuard:
    """Truncates sequences longer than ``max_length`` and counts how many it cut.

    The guard bounds the memory any single input can take, in training and in serving alike.
    """

    def __init__(self, max_length: int) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self.max_length = max_length
        self.truncated = 0

    def __call__(self, ids: list[int]) -> list[int]:
        if len(ids) > self.max_length:
            self.truncated += 1
            return ids[: self.max_length]
        return ids
