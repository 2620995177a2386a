"""The length guard of token id sequences (torch-free: the ONNX runtime uses it too)."""

from __future__ import annotations

#: The truncation policies of ``LengthGuard``, by name.
POLICIES = ("head", "head_tail")


class LengthGuard:
    """Truncates sequences longer than ``max_length`` and counts how many it cut.

    The guard bounds the memory any single input can take, in training and in serving alike.

    Args:
        max_length: the most ids a sequence keeps.
        policy: which ids a longer sequence keeps.
            ``head``: the first ``max_length``.
            ``head_tail``: the first ``max_length // 4`` and the last ``max_length -
            max_length // 4``, in order. Long reviews tend to state their verdict at the end;
            Sun et al. (2019, "How to Fine-Tune BERT for Text Classification") found head +
            tail best on IMDb (128 + 382 of 512 tokens, about a quarter and three quarters).
    """

    def __init__(self, max_length: int, policy: str = "head") -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        if policy not in POLICIES:
            raise ValueError(f"truncation policy must be one of {POLICIES}, got {policy!r}")
        self.max_length = max_length
        self.policy = policy
        # The tail always keeps at least one id (max_length >= 1), so ids[-tail:] never
        # degenerates into ids[-0:], the whole sequence.
        self.head = max_length if policy == "head" else max_length // 4
        self.tail = max_length - self.head
        self.truncated = 0

    def __call__(self, ids: list[int]) -> list[int]:
        if len(ids) <= self.max_length:
            return ids
        self.truncated += 1
        if self.tail == 0:
            return ids[: self.head]
        return ids[: self.head] + ids[-self.tail :]
