"""Torch-free rules of inference, shared by the PyTorch models and the ONNX runtime
(``nlp_lstm.deploy.runtime``) so that both accept, refuse and decode alike: the checks of sampling,
generation and translation-decoding settings, the GNMT length penalty, the target length limit
``a * S + b``, how a generation prompt becomes ids, how a translation's ids become text, and
``generate`` / ``predict`` of a language model on top of its ``start_generation``.

Legend: S source length.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from nlp_lstm.data.guard import LengthGuard
from nlp_lstm.text_stream import TextStream

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


def best_translations(texts: Sequence[str],
                      hypotheses: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per source text, its best hypothesis (``translate``'s first) as ``{"source",
    "translation", "score"}``: what ``predict`` and the HTTP endpoint answer."""
    return [{"source": text, "translation": hyps[0]["translation"], "score": hyps[0]["score"]}
            for text, hyps in zip(texts, hypotheses, strict=True)]


class TranslatesText:
    """``translate`` and ``predict`` of a translation model (the PyTorch module and the ONNX
    runtime's), from its tokenizers, ``max_length`` and ``_decode_ids``: its own batched
    greedy or beam search."""

    tokenizer: Any
    target_tokenizer: Any
    max_length: int

    def _decode_ids(self, ids: list[list[int]], *, beam_size: int | None, n_best: int,
                    max_length_ratio: float | None) -> list[list[Any]]:
        """Source ids per sentence -> its ``n_best`` hypotheses (``tokens``, ``score``,
        ``attention`` (T, S) or None), best first."""
        raise NotImplementedError

    def _attention(self, weights: Any, length: int) -> Any:
        """A hypothesis' attention over the first ``length`` source positions, as returned."""
        return weights[:, :length]

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Target ids (a hypothesis, <eos> last or not) -> text."""
        return detokenize(self.target_tokenizer, tokens)

    def translate(self, texts: Sequence[str], *, beam_size: int | None = None, n_best: int = 1,
                  max_length_ratio: float | None = None
                  ) -> tuple[list[list[dict[str, Any]]], int]:
        """Translate raw sentences (none empty). Returns per sentence its ``n_best``
        translations ``{"translation", "score", "tokens", "source_tokens", "attention"}``, best
        first, and how many sources were cut at ``max_length`` tokens."""
        guard = LengthGuard(self.max_length)
        ids = [guard(self.tokenizer.encode(t) or [self.tokenizer.unk_id]) for t in texts]
        hypotheses = self._decode_ids(ids, beam_size=beam_size, n_best=n_best,
                                      max_length_ratio=max_length_ratio)
        results = [[{
            "translation": self.detokenize(h.tokens), "score": h.score,
            "tokens": token_pieces(self.target_tokenizer, h.tokens),
            "source_tokens": [self.tokenizer.decode([t]) for t in sentence],
            "attention": None if h.attention is None else self._attention(h.attention,
                                                                          len(sentence)),
        } for h in hyps] for sentence, hyps in zip(ids, hypotheses, strict=True)]
        return results, guard.truncated

    def predict(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """The best translation of each text (the model's decoding settings), and how many
        sources were cut."""
        hypotheses, truncated = self.translate(texts)
        return best_translations(texts, hypotheses), truncated


# ------------------------------------------------------------------ generation results
def pieces(streams: list[TextStream], steps: Iterable[Sequence[int]]) -> Iterator[list[str]]:
    """Each step's tokens (one per stream) pushed into the streams: per step, the text each
    added; ends when every stream is done, else flushes them after the last step."""
    for tokens in steps:
        yield [stream.push(t) for stream, t in zip(streams, tokens, strict=True)]
        if all(stream.done for stream in streams):
            return
    yield [stream.finish() for stream in streams]


class GeneratesText:
    """``start_generation``, ``generate`` and ``predict`` of a language model (the PyTorch
    module and the ONNX runtime's), from its ``encode_prompt``, its ``tokenizer`` and its
    ``_pieces``: the sampling loop over its own tensors."""

    tokenizer: Any

    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        raise NotImplementedError

    def _pieces(self, ids: list[int], streams: list[TextStream],
                settings: dict[str, Any]) -> Iterator[list[str]]:
        """Continue the prompt ``ids`` once per stream with the sampling ``settings`` (seed
        included), yielding ``pieces(streams, tokens)`` of each step's tokens."""
        raise NotImplementedError

    def start_generation(self, prompt: str = "", *, max_new_tokens: int = 200,
                         temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                         repetition_penalty: float = 1.0, seed: int | None = None,
                         num_samples: int = 1, stop: Sequence[str] = (),
                         ) -> tuple[list[TextStream], Iterator[list[str]]]:
        """Check the arguments and the prompt, then return one ``TextStream`` per sample and an
        iterator that continues ``prompt`` ``num_samples`` times at once, yielding after every
        step the text each sample added ("" where nothing became final); the streams hold the
        whole texts. Nothing is computed before the iterator is advanced.

        The prompt is read in one call, then each token is one step with the carried state (no
        re-reading). A sample ends at ``<eos>``, at a stop string (not included) or after
        ``max_new_tokens`` tokens. Temperature 0 is greedy; ``seed`` makes the samples
        reproducible (on the same machine and library versions)."""
        check_generation(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                         top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                         num_samples=num_samples, stop=stop)
        ids, _ = self.encode_prompt(prompt)
        streams = [TextStream(self.tokenizer, stop) for _ in range(num_samples)]
        settings = {"max_new_tokens": max_new_tokens, "temperature": temperature,
                    "top_k": top_k, "top_p": top_p, "repetition_penalty": repetition_penalty,
                    "seed": seed}
        return streams, self._pieces(ids, streams, settings)

    def generate(self, prompt: str = "", **settings: Any) -> list[dict[str, Any]]:
        """Run ``start_generation`` (same arguments) to the end: per sample ``{"prompt",
        "text", "tokens", "seconds"}``, ``tokens`` the tokens it generated (its ``<eos>`` or
        stop string included), ``seconds`` the wall time of the whole batch of samples."""
        start = time.perf_counter()
        streams, steps = self.start_generation(prompt, **settings)
        for _ in steps:
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
