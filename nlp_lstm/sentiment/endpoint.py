"""Sentiment over HTTP: ``POST /predict {"texts": [...]}`` -> one ``{"text", "label", "probs"}``
per text; texts of concurrent requests batch together."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from nlp_lstm.deploy.serve.endpoint import Call, Endpoint, ServeSettings, text_length
from nlp_lstm.deploy.serve.validation import check_fields, texts_field


def parse(data: Mapping[str, Any], settings: ServeSettings) -> Call:
    check_fields(data, {"texts"}, {"texts"})
    return Call(texts_field(data, settings.max_queue))


def run(model: Any, texts: list[str], key: Hashable) -> list[dict[str, Any]]:
    return model.predict(texts)[0]


ENDPOINT = Endpoint("/predict", parse=parse, length=text_length, run=run)
