"""Generation over HTTP: ``POST /generate {"prompt", "max_new_tokens", "temperature", "top_k",
"top_p", "repetition_penalty", "seed", "num_samples", "stop", "stream"}`` -> per sample
``{"prompt", "text", "tokens", "seconds"}``; with ``"stream": true``, NDJSON lines
``{"text": piece}`` as the text becomes final, then ``{"done": true, ...}``. One request runs
at a time per worker thread."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from nlp_lstm.deploy.serve.endpoint import Call, Endpoint, ServeSettings
from nlp_lstm.deploy.serve.validation import (
    boolean,
    check_fields,
    integer,
    invalid,
    number,
    string_list,
)

FIELDS = {"prompt", "max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty",
          "seed", "num_samples", "stop", "stream"}


@dataclass
class GenerationRun:
    """One generation request under way: ``pieces`` yields, after every step, the text each
    sample added ("" where nothing became final); once it is exhausted, ``results()`` gives per
    sample ``{"prompt", "text", "tokens", "seconds"}`` as ``generate`` returns it."""

    pieces: Iterator[list[str]]
    prompt: str
    _streams: list[Any]
    _start: float = field(default_factory=time.perf_counter)

    def results(self) -> list[dict[str, Any]]:
        seconds = round(time.perf_counter() - self._start, 4)
        return [{"prompt": self.prompt, "text": s.text, "tokens": s.tokens, "seconds": seconds}
                for s in self._streams]


def parse(data: Mapping[str, Any], settings: ServeSettings) -> Call:
    check_fields(data, FIELDS, set())
    prompt = data.get("prompt", "")
    if not isinstance(prompt, str):
        raise invalid(f"'prompt' must be a string, got {type(prompt).__name__}")
    options = {
        "max_new_tokens": integer(data, "max_new_tokens", 200, 0, settings.max_new_tokens),
        "temperature": number(data, "temperature", 1.0),
        "top_k": integer(data, "top_k", 0, 0),
        "top_p": number(data, "top_p", 1.0),
        "repetition_penalty": number(data, "repetition_penalty", 1.0),
        "seed": integer(data, "seed", None, nullable=True),
        "num_samples": integer(data, "num_samples", 1, 1, settings.max_samples),
        "stop": string_list(data, "stop"),
    }
    stream = boolean(data, "stream", False)
    if stream and options["num_samples"] != 1:
        raise invalid("'stream' sends one sample as it is generated; got "
                      f"num_samples={options['num_samples']}")
    return Call([prompt], options=options, stream=stream, size=options["num_samples"])


def prompt_length(model: Any, prompt: str) -> int:
    """The tokens the model reads for the prompt (the separator's for an empty one)."""
    ids, cut = model.encode_prompt(prompt)
    return len(ids) + cut


def start(model: Any, call: Call) -> GenerationRun:
    streams, pieces = model.start_generation(call.inputs[0], **call.options)
    return GenerationRun(pieces, call.inputs[0], streams)


ENDPOINT = Endpoint("/generate", parse=parse, length=prompt_length, start=start,
                    describe=lambda i: "the prompt")
