"""Translation on an ONNX export: ``translate`` and ``predict`` as
``Seq2SeqTranslator``'s, greedy or beam search (``nlp_lstm.deploy.runtime.decoding``).

Legend: B batch, S source length, L decoder layers, H hidden, V target vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlp_lstm.data.tokenizer import Tokenizer
from nlp_lstm.deploy.runtime.decoding import Hypothesis, beam_search, greedy
from nlp_lstm.deploy.runtime.graphs import ExportedModel, ExportedTask, pad
from nlp_lstm.inference import (
    TranslatesText,
    check_decoding,
    max_target_length,
)

State = dict[str, np.ndarray]
#: The batch axis of each state tensor: h, c are (L, B, H); the rest batch-first.
BATCH_AXIS = {"h": 1, "c": 1}


def select(state: State, index: np.ndarray) -> State:
    """Rows ``index`` of every state tensor (a decoding ``reorder``)."""
    return {name: value.take(index, axis=BATCH_AXIS.get(name, 0)) for name, value in state.items()}


class OnnxTranslator(TranslatesText, ExportedTask):
    """A translation export (``encoder`` and one-step ``decoder`` graphs)."""

    task = "translation"

    def __init__(self, path: str | Path | ExportedModel, providers: Any = None,
                 threads: int | None = None) -> None:
        super().__init__(path, providers, threads)
        self.tokenizer = Tokenizer.from_json(self.export.fitted["tokenizer"])
        target = self.export.fitted.get("target_tokenizer")  # None: a joint vocabulary
        self.target_tokenizer = Tokenizer.from_json(target) if target else self.tokenizer
        settings = self.export.manifest["decoding"]
        self.beam_size: int = settings["beam_size"]
        self.length_penalty: float = settings["length_penalty"]
        self.max_length_ratio: float = settings["max_length_ratio"]
        self.max_length_offset: int = settings["max_length_offset"]

    def _step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State, np.ndarray]:
        out = self.export.run("decoder", {"token": tokens, **state})
        new = {**state, "h": out["h_out"], "c": out["c_out"], "feed": out["feed_out"]}
        return out["log_probs"], new, out["attention"]

    def decode(self, ids: Sequence[Sequence[int]], *, beam_size: int | None = None,
               n_best: int = 1, max_length_ratio: float | None = None) -> list[list[Hypothesis]]:
        """Source ids per sentence -> its ``n_best`` hypotheses, best first (greedy for a
        beam of 1), as ``Seq2SeqTranslator.decode``."""
        beam = self.beam_size if beam_size is None else beam_size
        ratio = self.max_length_ratio if max_length_ratio is None else max_length_ratio
        check_decoding(beam, n_best, ratio, self.max_length_offset)
        src, src_lengths = pad(ids, self.tokenizer.pad_id)  # (B, S), (B,)
        max_lengths = np.array([max_target_length(n, ratio, self.max_length_offset)
                                for n in src_lengths.tolist()], dtype=np.int64)
        state = self.export.run("encoder", {"src": src, "src_lengths": src_lengths})
        special = {"bos_id": self.target_tokenizer.bos_id, "eos_id": self.target_tokenizer.eos_id}
        if beam == 1 and n_best == 1:
            return [[h] for h in greedy(self._step, state, max_lengths=max_lengths,
                                         reorder=select, **special)]
        return beam_search(self._step, state, reorder=select, max_lengths=max_lengths,
                           beam_size=beam, n_best=n_best,
                           length_penalty_alpha=self.length_penalty, **special)

    def _decode_ids(self, ids: list[list[int]], **settings: Any) -> list[list[Hypothesis]]:
        return self.decode(ids, **settings)
