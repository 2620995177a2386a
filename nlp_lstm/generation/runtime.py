"""Generation on an ONNX export: ``start_generation``, ``generate``, ``encode_prompt`` and
``predict`` as ``LanguageModel``'s: the prompt read in one call of the ``prompt`` graph,
then one ``step`` graph call per token with the carried state, sampling in numpy
(``nlp_lstm.deploy.runtime.sampling``), text through the same ``TextStream``.

Legend: B batch (samples), P prompt length, L layers, H hidden, W attention window, V vocab.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nlp_lstm.data.tokenizer import Tokenizer
from nlp_lstm.deploy.runtime.graphs import ExportedModel, ExportedTask
from nlp_lstm.deploy.runtime.sampling import iter_sample
from nlp_lstm.inference import GeneratesText, encode_prompt, pieces
from nlp_lstm.text_stream import TextStream

#: The batch axis of each state tensor: h, c are (L, B, H); memory (B, W, H), its mask (B, W).
BATCH_AXIS = {"h": 1, "c": 1, "memory": 0, "memory_mask": 0}


class OnnxLanguageModel(GeneratesText, ExportedTask):
    """A generation export (``prompt`` and ``step`` graphs)."""

    task = "generation"

    def __init__(self, path: str | Path | ExportedModel, providers: Any = None,
                 threads: int | None = None) -> None:
        super().__init__(path, providers, threads)
        self.tokenizer = Tokenizer.from_json(self.export.fitted["tokenizer"])
        self.separator: str = self.export.manifest["separator"]
        self.state_names: list[str] = list(self.export.manifest["state"])

    def encode_prompt(self, prompt: str) -> tuple[list[int], int]:
        """The prompt's ids, its last ``max_length`` kept, and how many tokens were cut."""
        return encode_prompt(self.tokenizer, prompt, self.separator, self.max_length)

    def _step(self, tokens: np.ndarray, state: dict[str, np.ndarray]
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        out = self.export.run("step", {"token": tokens, **state})
        return out["logits"], {name: out[f"{name}_out"] for name in self.state_names}

    def _pieces(self, ids: list[int], streams: list[TextStream],
                settings: dict[str, Any]) -> Iterator[list[str]]:
        n = len(streams)
        prompt_ids = np.array([ids], dtype=np.int64)  # (1, P)
        out = self.export.run("prompt", {"tokens": prompt_ids})
        logits = np.repeat(out["logits"], n, axis=0)  # (n, V): the prompt read once
        state = {name: np.repeat(out[name], n, axis=BATCH_AXIS[name])
                 for name in self.state_names}
        steps = iter_sample(self._step, state, logits, prompt_ids=np.repeat(prompt_ids, n, 0),
                            eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id,
                            **settings)
        yield from pieces(streams, (tokens.tolist() for tokens in steps))  # tokens (n,)
