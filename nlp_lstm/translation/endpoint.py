"""Translation over HTTP: ``POST /translate {"texts": [...], "beam_size": N}`` -> one
``{"source", "translation", "score"}`` per text (the best hypothesis); texts batch together
only with texts of the same beam size."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from nlp_lstm.deploy.serve.endpoint import Call, Endpoint, ServeSettings, text_length
from nlp_lstm.deploy.serve.validation import check_fields, integer, texts_field
from nlp_lstm.inference import best_translations


def parse(data: Mapping[str, Any], settings: ServeSettings) -> Call:
    check_fields(data, {"texts", "beam_size"}, {"texts"})
    texts = texts_field(data, settings.max_queue)
    beam = integer(data, "beam_size", None, 1, settings.max_beam_size, nullable=True)
    return Call(texts, key=beam)


def run(model: Any, texts: list[str], beam_size: Hashable) -> list[dict[str, Any]]:
    # The same fields as the model's predict, with a beam size of choice.
    return best_translations(texts, model.translate(texts, beam_size=beam_size)[0])


ENDPOINT = Endpoint("/translate", parse=parse, length=text_length, run=run)
