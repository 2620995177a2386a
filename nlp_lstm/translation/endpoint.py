"""Translation over HTTP: ``POST /translate {"texts": [...], "beam_size": N}`` -> one
``{"source", "translation", "score"}`` per text (the best hypothesis); texts batch together
only with texts of the same beam size."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from nlp_lstm.serve.endpoint import Call, Endpoint, ServeSettings, text_length
from nlp_lstm.serve.validation import check_fields, integer, texts_field


def parse(data: Mapping[str, Any], settings: ServeSettings) -> Call:
    check_fields(data, {"texts", "beam_size"}, {"texts"})
    texts = texts_field(data, settings.max_queue)
    beam = integer(data, "beam_size", None, 1, settings.max_beam_size, nullable=True)
    return Call(texts, key=beam)


def run(model: Any, texts: list[str], beam_size: Hashable) -> list[dict[str, Any]]:
    # The same fields as Seq2SeqTranslator.predict, with a beam size of choice.
    results, _ = model.translate(texts, beam_size=beam_size)
    return [{"source": text, "translation": r[0]["translation"], "score": r[0]["score"]}
            for text, r in zip(texts, results, strict=True)]


ENDPOINT = Endpoint("/translate", parse=parse, length=text_length, run=run)
