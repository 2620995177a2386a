"""Forecasting over HTTP: ``POST /forecast {"series": [window, ...]}``, each window the last L
rows of the input columns (a list of rows of numbers, or ``{"timestamps": [...], "rows": [...]}``)
-> one ``{"forecast"}`` per window (with ``"timestamps"`` and ``"quantiles"`` where they apply),
in original units; windows of concurrent requests batch together. A window of more rows than the
model reads gets 413; fewer rows, a wrong width or a missing value, 422."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from nlp_lstm.deploy.serve.endpoint import Call, Endpoint, ServeSettings
from nlp_lstm.deploy.serve.validation import RequestError, check_fields, invalid


def parse(data: Mapping[str, Any], settings: ServeSettings) -> Call:
    check_fields(data, {"series"}, {"series"})
    series = data["series"]
    if not isinstance(series, list) or not series:
        raise invalid("'series' must be a non-empty list of windows (lists of rows)")
    if len(series) > settings.max_queue:
        raise RequestError(413, f"the request has {len(series)} windows, more than the server "
                           f"holds at once ({settings.max_queue}, --max-queue)",
                           "too_many_texts", limit=settings.max_queue, length=len(series))
    for i, window in enumerate(series):
        if isinstance(window, dict):
            if set(window) != {"timestamps", "rows"} or not isinstance(window["timestamps"],
                                                                       list):
                raise invalid(f"series[{i}] must be a list of rows or an object with "
                              "'timestamps' (a list of dates) and 'rows'")
            window = window["rows"]
        if (not isinstance(window, list) or not window
                or not all(isinstance(row, list) for row in window)):
            raise invalid(f"series[{i}] must be a non-empty list of rows of numbers")
        for row in window:
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row):
                raise invalid(f"series[{i}] has a row that is not all numbers: {row[:8]}")
    return Call(series)


def run(model: Any, windows: list[Any], key: Hashable) -> list[dict[str, Any]]:
    return model.predict(windows)[0]


def rows(model: Any, window: Any) -> int:
    """The guard's length of a window: its rows."""
    return len(window["rows"] if isinstance(window, dict) else window)


ENDPOINT = Endpoint("/forecast", parse=parse, length=rows,
                    run=run, describe=lambda i: f"series[{i}]", unit="rows")
