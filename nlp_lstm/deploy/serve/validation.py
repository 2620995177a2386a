"""Reading and checking request bodies: every problem becomes a ``RequestError`` with the HTTP
status and a message naming the value and what was expected."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any


class RequestError(Exception):
    """A request the server refuses: ``status`` and the JSON body ``{"error": message, ...}``."""

    def __init__(self, status: int, message: str, reason: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.extra = status, message, reason, extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


async def read_json(headers: Mapping[str, str], chunks: AsyncIterator[bytes],
                    limit: int) -> dict[str, Any]:
    """The body as a JSON object, read only up to ``limit`` bytes."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the request body has {int(declared)} bytes, more than the "
                           f"limit of {limit} bytes (--max-body-bytes)", "body_too_large",
                           limit=limit, length=int(declared))
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the request body is longer than the limit of {limit} "
                               "bytes (--max-body-bytes)", "body_too_large", limit=limit)
    try:
        data = json.loads(body.decode("utf-8"))  # JSON is UTF-8 (RFC 8259), no guessing
    except UnicodeDecodeError as e:
        raise RequestError(400, f"the body is not UTF-8 (byte {e.start})", "bad_json") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, f"the body is not valid JSON: {e.msg} at line {e.lineno} "
                           f"column {e.colno}", "bad_json") from None
    if not isinstance(data, dict):
        raise RequestError(422, f"expected a JSON object, got {type(data).__name__}",
                           "invalid")
    return data


def invalid(message: str) -> RequestError:
    return RequestError(422, message, "invalid")


def check_fields(data: Mapping[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise invalid(f"unknown field(s) {unknown}; expected some of {sorted(allowed)}")
    missing = sorted(required - set(data))
    if missing:
        raise invalid(f"missing field(s) {missing}")


def texts_field(data: Mapping[str, Any], max_texts: int) -> list[str]:
    """``texts``: a non-empty list of non-blank strings, at most ``max_texts``."""
    texts = data["texts"]
    if not isinstance(texts, list) or not texts:
        raise invalid(f"'texts' must be a non-empty list of strings, got {_show(texts)}")
    if len(texts) > max_texts:
        raise RequestError(413, f"the request has {len(texts)} texts, more than the server "
                           f"holds at once ({max_texts}, --max-queue)", "too_many_texts",
                           limit=max_texts, length=len(texts))
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise invalid(f"texts[{i}] must be a string, got {_show(text)}")
        if not text.strip():
            raise invalid(f"texts[{i}] is empty or whitespace: expected text")
    return texts


def integer(data: Mapping[str, Any], name: str, default: Any, low: int | None = None,
            high: int | None = None, nullable: bool = False) -> Any:
    value = data.get(name, default)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{name}' must be an integer{' or null' if nullable else ''}, "
                      f"got {_show(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise invalid(f"'{name}' must be {bounds}, got {value}")
    return value


def number(data: Mapping[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"'{name}' must be a finite number, got {_show(value)}")
    return float(value)


def boolean(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"'{name}' must be true or false, got {_show(value)}")
    return value


def string_list(data: Mapping[str, Any], name: str) -> list[str]:
    """A string or a list of strings (``stop``)."""
    value = data.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or any(not isinstance(s, str) or not s for s in value):
        raise invalid(f"'{name}' must be a non-empty string or a list of them, "
                      f"got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
