"""Torch-free rules of inference, shared by the PyTorch models and the ONNX runtime
(``nlp_lstm.runtime``) so that both accept, refuse and decode alike: the checks of sampling,
generation and translation-decoding settings, the GNMT length penalty, the target length limit
``a * S + b``, how a generation prompt becomes ids, how a translation's ids become text, and
``generate`` / ``predict`` of a language model on top of its ``start_generation``.

Legend: S source length.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, TypeVar

Number = TypeVar("Number")


class TargetTokenizer(Protocol):
    """What ``detokenize`` and ``token_pieces`` need of a target tokenizer."""

    eos_id: int

    def decode(self, ids: list[int]) -> str: ...


class PromptTokenizer(Protocol):
    """What ``encode_prompt`` needs of a tokenizer (``nlp_lstm.data.tokenizer.Tokenizer``)."""

    unk_id: int
    kind: str
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...


# ------------------------------------------------------------------ sampling
def check_sampling(
    *, temperature: float, top_k: int, top_p: float, repetition_penalty: float,
    max_new_tokens: int | None = None,
) -> None:
    """ValueError naming the first bad argument; callers validate before any work."""
    if not temperature >= 0.0:  # also rejects NaN
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {top_k!r}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 = off), got {top_p!r}")
    if not repetition_penalty > 0.0:
        raise ValueError(f"repetition_penalty must be > 0 (1 = off), got {repetition_penalty!r}")
    if max_new_tokens is not None and (
        isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")


def check_generation(
    *, max_new_tokens: int, temperature: float, top_k: int, top_p: float,
    repetition_penalty: float, seed: int | None, num_samples: int, stop: Sequence[str],
) -> None:
    """``check_sampling`` plus the settings of a generation request (``start_generation``)."""
    check_sampling(temperature=temperature, top_k=top_k, top_p=top_p,
                   repetition_penalty=repetition_penalty, max_new_tokens=max_new_tokens)
    if temperature == 0.0 and (top_k or top_p != 1.0):
        raise ValueError(f"top_k={top_k} and top_p={top_p} restrict sampling, but "
                         "temperature=0 is greedy decoding: give a temperature > 0 to "
                         "sample, or leave top_k=0 and top_p=1")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    if any(not isinstance(s, str) or not s for s in stop):
        raise ValueError(f"stop strings must be non-empty strings, got {list(stop)!r}")


def encode_prompt(
    tokenizer: PromptTokenizer, prompt: Any, separator: str, max_length: int
) -> tuple[list[int], int]:
    """The prompt's ids (the separator's if the prompt is empty), its last ``max_length`` kept,
    and how many tokens were cut. A character model refuses characters it never saw (a
    ValueError naming them); word models read unknown words as ``<unk>``, byte-level BPE
    encodes any text."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
    text = prompt or separator
    ids = tokenizer.encode(text)
    if tokenizer.kind == "char" and tokenizer.unk_id in ids:
        unknown = sorted({ch for ch in text if tokenizer.encode(ch) == [tokenizer.unk_id]})
        raise ValueError(f"the prompt has characters the model never saw in training: "
                         f"{', '.join(map(repr, unknown))}; expected only characters of its "
                         f"vocabulary of {tokenizer.vocab_size - 4}")
    if not ids:
        raise ValueError(f"the prompt {prompt!r} has no tokens for this {tokenizer.kind}"
                         " model; give some text")
    cut = max(0, len(ids) - max_length)
    return ids[cut:], cut


# ------------------------------------------------------------------ decoding
def check_decoding(beam_size: int, n_best: int, max_length_ratio: float,
                   max_length_offset: int) -> None:
    """A ValueError naming the first bad decoding setting of a translation."""
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an integer >= 1, got {beam_size!r}")
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be between 1 and beam_size={beam_size}, got {n_best!r}")
    if max_length_ratio < 0 or max_length_offset < 0 or \
            (max_length_ratio == 0 and max_length_offset < 1):
        raise ValueError("max_length_ratio and max_length_offset must be >= 0 and allow at "
                         f"least one token, got {max_length_ratio!r} and "
                         f"{max_length_offset!r}")


def length_penalty(lengths: Number, alpha: float) -> Number:
    """GNMT length penalty ((5 + |Y|) / 6) ** alpha (Wu et al. 2016), of an int, a float, a
    tensor or an array of lengths."""
    return ((5.0 + lengths) / 6.0) ** alpha


def max_target_length(source_length: int, ratio: float, offset: int) -> int:
    """The most target tokens (<eos> included) for a source of S tokens: int(ratio * S + offset),
    at least 1 (as the PyTorch path computes it in float64)."""
    return max(1, int(ratio * float(source_length) + offset))


def detokenize(tokenizer: TargetTokenizer, tokens: Sequence[int]) -> str:
    """Target ids (a hypothesis, <eos> last or not) -> text."""
    return tokenizer.decode([t for t in tokens if t != tokenizer.eos_id])


def token_pieces(tokenizer: TargetTokenizer, tokens: Sequence[int]) -> list[str]:
    """Each target token as text, for attention pictures; <eos> by name."""
    return ["<eos>" if t == tokenizer.eos_id else tokenizer.decode([t]) for t in tokens]


# ------------------------------------------------------------------ generation results
class GeneratesText:
    """``generate`` and ``predict`` of a language model (the PyTorch module and the ONNX
    runtime's), from its ``start_generation`` and ``encode_prompt``."""

    def start_generation(self, prompt: str, **settings: Any) -> tuple[list[Any], Iterator[Any]]:
        raise NotImplementedError

    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        raise NotImplementedError

    def generate(self, prompt: str = "", **settings: Any) -> list[dict[str, Any]]:
        """Run ``start_generation`` (same arguments) to the end: per sample ``{"prompt",
        "text", "tokens", "seconds"}``, ``tokens`` the tokens it generated (its ``<eos>`` or
        stop string included), ``seconds`` the wall time of the whole batch of samples."""
        start = time.perf_counter()
        streams, pieces = self.start_generation(prompt, **settings)
        for _ in pieces:
            pass
        seconds = round(time.perf_counter() - start, 4)
        return [{"prompt": prompt, "text": s.text, "tokens": s.tokens, "seconds": seconds}
                for s in streams]

    def predict(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """Each text is a prompt, continued greedily for up to 200 tokens."""
        results, truncated = [], 0
        for text in texts:
            truncated += self.encode_prompt(text)[1] > 0
            results.append(self.generate(text, temperature=0.0)[0])
        return results, truncated
