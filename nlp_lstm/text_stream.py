"""Incremental detokenization of a sample as its tokens arrive, with stop strings (torch-free:
the PyTorch language model and the ONNX runtime stream text through the same ``TextStream``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Decoder(Protocol):
    """What a ``TextStream`` needs of a tokenizer (``nlp_lstm.data.tokenizer.Tokenizer``)."""

    eos_id: int

    def decode(self, ids: list[int]) -> str: ...


class TextStream:
    """Turns one sample's token ids into text as they arrive, and stops it at a stop string.

    ``push`` returns the text that is now final. Held back until the next tokens decide: the
    bytes of a character that byte-level BPE split across tokens, and a suffix of the text that
    may still become a stop string. A stop string ends the sample and is not part of its text
    (as in the OpenAI API; Hugging Face keeps it). Each token costs a decode of at most
    ``CONTEXT`` + a few tokens, never of the whole text: the previous tokens are decoded along
    only for the tokenizer's joining rules (spaces between words, none before punctuation)."""

    CONTEXT = 8

    def __init__(self, tokenizer: Decoder, stop: Sequence[str] = ()) -> None:
        self.tokenizer, self.stop = tokenizer, tuple(stop)
        self.ids: list[int] = []  # the text's tokens
        self.tokens = 0  # tokens generated, an <eos> and a stop string's included
        self.text = ""  # the final text so far
        self.done = False
        self._context: list[int] = []  # the last decoded ids
        self._pending: list[int] = []  # ids whose bytes do not make whole characters yet
        self._held = ""  # decoded text that may still turn into a stop string

    def push(self, token: int) -> str:
        """Add a token; returns the newly final text ("" once done)."""
        if self.done:
            return ""
        self.tokens += 1
        if token == self.tokenizer.eos_id:
            return self.finish()
        self.ids.append(token)
        self._pending.append(token)
        piece = self._decode(force=False)
        return "" if piece is None else self._release(self._held + piece)

    def finish(self) -> str:
        """End the sample (``<eos>``, or out of tokens): what was held back becomes final."""
        if self.done and not self._pending and not self._held:
            return ""
        self.done = True
        text, self._held = self._held + (self._decode(force=True) or ""), ""
        return self._emit(text)

    def _decode(self, force: bool) -> str | None:
        """The text the pending ids add after the context; None while they end inside a
        character (unless ``force``)."""
        if not self._pending:
            return ""
        before = self.tokenizer.decode(self._context)
        after = self.tokenizer.decode(self._context + self._pending)
        if after.endswith("\ufffd") and not force and len(self._pending) < 4:
            return None  # a UTF-8 character is at most 4 bytes
        self._context = (self._context + self._pending)[-self.CONTEXT:]
        self._pending = []
        return after[len(before):] if after.startswith(before) else after

    def _release(self, text: str) -> str:
        hits = [text.find(s) for s in self.stop if s in text]
        if hits:
            self.done, self._held, self._pending = True, "", []
            return self._emit(text[: min(hits)])
        keep = len(text)
        for s in self.stop:  # hold back the longest suffix that begins a stop string
            n = next((n for n in range(min(len(s) - 1, len(text)), 0, -1)
                      if text.endswith(s[:n])), 0)
            keep = min(keep, len(text) - n)
        self._held = text[keep:]
        return self._emit(text[:keep])

    def _emit(self, new: str) -> str:
        self.text += new
        return new
