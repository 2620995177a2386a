"""Sampling in numpy, for the ONNX runtime: the logit processors and the loop of
``nlp_lstm.nn.sampling`` (read its docstring), in its order: repetition penalty (CTRL),
temperature (0 = greedy), top-k, top-p; ``<eos>`` ends a row, which yields ``pad_id`` after.

Greedy decoding (temperature 0) picks the same tokens as the PyTorch path given the same
logits. Draws come from a numpy ``Generator``: a seed makes them reproducible, but they are
not PyTorch's draws for that seed.

Legend: B batch (one row per sample), V vocab.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nlp_lstm.inference import check_sampling

StepFn = Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]


def penalize_repetition(logits: np.ndarray, seen: np.ndarray, penalty: float) -> np.ndarray:
    """logits (B, V), seen (B, V) bool: seen tokens' logits / penalty if positive, * if not."""
    if penalty == 1.0:
        return logits
    penalized = np.where(logits > 0, logits / np.float32(penalty), logits * np.float32(penalty))
    return np.where(seen, penalized, logits)


def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """-inf outside each row's k largest (ties with the k-th stay); 0 is off."""
    if k == 0 or k >= logits.shape[-1]:
        return logits
    kth = -np.partition(-logits, k - 1, axis=-1)[:, k - 1 : k]  # (B, 1)
    return np.where(logits < kth, -np.inf, logits).astype(logits.dtype)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """-inf outside each row's nucleus (the most likely tokens until their probability reaches
    p, that token included, at least one); 1 is off."""
    if p >= 1.0:
        return logits
    order = np.argsort(-logits, axis=-1, kind="stable")  # (B, V)
    probs = _softmax(np.take_along_axis(logits, order, axis=-1))  # (B, V) sorted
    before = np.cumsum(probs, axis=-1) - probs
    drop_sorted = before >= p
    drop_sorted[:, 0] = False
    drop = np.zeros_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=-1)  # back to vocabulary order
    return np.where(drop, -np.inf, logits).astype(logits.dtype)


def process_logits(logits: np.ndarray, seen: np.ndarray | None, *, temperature: float,
                   top_k: int, top_p: float, repetition_penalty: float) -> np.ndarray:
    """All processors in order; with temperature 0 only the repetition penalty applies."""
    if seen is not None:
        logits = penalize_repetition(logits, seen, repetition_penalty)
    if temperature == 0.0:
        return logits
    if temperature != 1.0:
        logits = logits / np.float32(temperature)
    return top_p_filter(top_k_filter(logits, top_k), top_p)


def choose(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Processed logits (B, V) -> tokens (B,): the argmax at temperature 0, else a draw."""
    if temperature == 0.0:
        return logits.argmax(axis=-1)
    cdf = np.cumsum(_softmax(logits.astype(np.float64)), axis=-1)  # (B, V)
    u = rng.random((len(logits), 1)) * cdf[:, -1:]
    return (cdf > u).argmax(axis=-1)  # the first token whose cumulated mass passes u


def iter_sample(step_fn: StepFn, state: Any, first_logits: np.ndarray, max_new_tokens: int, *,
                temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                repetition_penalty: float = 1.0, prompt_ids: np.ndarray | None = None,
                eos_id: int | None = None, pad_id: int | None = None,
                seed: int | None = None) -> Iterator[np.ndarray]:
    """Yield each step's tokens (B,) as they are chosen (``nn.sampling.iter_sample``); the step
    function runs only for the next token asked for."""
    check_sampling(temperature=temperature, top_k=top_k, top_p=top_p,
                   repetition_penalty=repetition_penalty, max_new_tokens=max_new_tokens)
    return _steps(step_fn, state, first_logits, max_new_tokens, temperature, top_k, top_p,
                  repetition_penalty, prompt_ids, eos_id, eos_id if pad_id is None else pad_id,
                  np.random.default_rng(seed))


def _steps(step_fn: StepFn, state: Any, logits: np.ndarray, max_new_tokens: int,
           temperature: float, top_k: int, top_p: float, repetition_penalty: float,
           prompt_ids: np.ndarray | None, eos_id: int | None, pad_id: int | None,
           rng: np.random.Generator) -> Iterator[np.ndarray]:
    B, V = logits.shape
    seen = None
    if repetition_penalty != 1.0:
        seen = np.zeros((B, V), dtype=bool)
        if prompt_ids is not None:
            np.put_along_axis(seen, prompt_ids, True, axis=1)
    finished = np.zeros(B, dtype=bool)
    for n in range(max_new_tokens):
        processed = process_logits(logits, seen, temperature=temperature, top_k=top_k,
                                   top_p=top_p, repetition_penalty=repetition_penalty)
        tokens = choose(processed, temperature, rng).astype(np.int64)  # (B,)
        if eos_id is not None:
            tokens = np.where(finished, pad_id, tokens)
            finished = finished | (tokens == eos_id)
        if seen is not None:
            seen[np.arange(B), tokens] = True
        yield tokens
        if n + 1 == max_new_tokens or bool(finished.all()):
            return
        logits, state = step_fn(tokens, state)
