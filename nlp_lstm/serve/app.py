"""The HTTP server: FastAPI routes over a ``Backend``, dynamic batching, the input-length guard,
Prometheus metrics.

Why FastAPI + uvicorn and not LitServe (0.2.19, evaluated for this): LitServe runs the model
in separate worker processes behind its own queues, and (1) has no bound on waiting requests,
so no 503 with Retry-After under overload; (2) its main process installs no SIGTERM handler,
and its shutdown closes the transport to the workers before the HTTP workers finish, so
requests in flight can be lost; (3) it counts a request, not its texts, against the batch size;
(4) its errors and metrics are its own formats. Each would be patched around it; with FastAPI the
batcher is one small module (``batching.py``) and uvicorn drains requests in flight on SIGTERM.

Status codes: 400 malformed JSON, 404/405 unknown route or method, 413 a body over
``max_body_bytes``, a text over ``max_input_tokens`` or more texts than the queue holds, 422 a
wrong field, type or value, 503 a full queue (with ``Retry-After``); every error body is
``{"error": "..."}`` (413 adds ``limit`` and ``length``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from nlp_lstm.serve.backend import TASK_ENDPOINTS, Backend, GenerationRun
from nlp_lstm.serve.batching import Admission, Batcher, QueueFullError
from nlp_lstm.serve.metrics import Metrics, MetricsMiddleware
from nlp_lstm.serve.validation import (
    RequestError,
    boolean,
    check_fields,
    integer,
    invalid,
    number,
    read_json,
    string_list,
    texts_field,
)

log = logging.getLogger("nlp_lstm.serve")

GENERATE_FIELDS = {"prompt", "max_new_tokens", "temperature", "top_k", "top_p",
                   "repetition_penalty", "seed", "num_samples", "stop", "stream"}
RETRY_AFTER_SECONDS = 1


@dataclass
class ServeSettings:
    """The server's limits. ``max_input_tokens`` None means the model's ``max_length``."""

    max_batch_size: int = 32
    max_wait_ms: float = 10.0
    max_input_tokens: int | None = None
    workers: int = 1
    max_queue: int = 1024
    max_body_bytes: int = 1 << 20
    max_new_tokens: int = 1024
    max_beam_size: int = 16
    max_samples: int = 16

    def check(self, backend: Backend) -> None:
        """ValueError naming the first bad setting."""
        for name in ("max_batch_size", "workers", "max_queue", "max_body_bytes",
                     "max_new_tokens", "max_beam_size", "max_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        limit = self.max_input_tokens
        if limit is not None and not 1 <= limit <= backend.max_length:
            raise ValueError(f"max_input_tokens must be in [1, {backend.max_length}] (the "
                             f"model's max_length), got {limit}")


def create_app(backend: Backend, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app serving ``backend``: its task's endpoint, ``/health`` and ``/metrics``."""
    settings = settings or ServeSettings()
    settings.check(backend)
    endpoint = TASK_ENDPOINTS[backend.task]
    limit = settings.max_input_tokens or backend.max_length
    metrics = Metrics()
    admission = Admission(settings.max_queue)
    metrics.pending.set_function(lambda: admission.pending)
    executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="nlp-lstm-infer")
    batcher: Batcher | None = None

    def run_batch(key: Hashable, texts: list[str]) -> list[dict[str, Any]]:
        if backend.task == "sentiment":
            return backend.predict_texts(texts)
        return backend.translate(texts, key)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal batcher
        batcher = Batcher(run_batch, max_batch_size=settings.max_batch_size,
                          max_wait=settings.max_wait_ms / 1000, admission=admission,
                          executor=executor, workers=settings.workers,
                          on_batch=metrics.batch_size.labels(endpoint).observe)
        batcher.start()
        yield
        # uvicorn calls this after the requests in flight have been answered.
        await batcher.stop()
        executor.shutdown(wait=True)

    app = FastAPI(title="nlp-lstm", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(MetricsMiddleware, metrics=metrics,
                       endpoints={endpoint, "/health", "/metrics"})

    def error_response(e: RequestError) -> JSONResponse:
        metrics.rejected.labels(endpoint, e.reason).inc()
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if e.status == 503 else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    async def answer(work: Callable[[], Awaitable[Response]]) -> Response:
        """Run a request; bad input becomes its 4xx, a bug a 500 (logged), never a crash."""
        try:
            return await work()
        except RequestError as e:
            return error_response(e)
        except QueueFullError as e:
            return error_response(RequestError(503, str(e), "queue_full"))
        except ValueError as e:  # the model's own checks (sampling values, prompt characters)
            return error_response(invalid(" ".join(str(e).split())))
        except Exception as e:
            log.exception("internal error")
            return JSONResponse({"error": f"internal error: {type(e).__name__}"},
                                status_code=500)

    def guard(texts: list[str]) -> None:
        """The input-length guard: 413 for the first text over ``limit`` tokens."""
        for i, text in enumerate(texts):
            n = backend.count_tokens(text)
            if n > limit:
                where = "the prompt" if backend.task == "generation" else f"texts[{i}]"
                raise RequestError(413, f"{where} has {n} tokens, more than the limit of "
                                   f"{limit} (--max-input-tokens)", "too_long",
                                   limit=limit, length=n, index=i)

    async def body(request: Request) -> dict[str, Any]:
        return await read_json(request.headers, request.stream(), settings.max_body_bytes)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        message = e.detail
        if e.status_code in (404, 405):
            message = (f"{request.method} {request.url.path}: {e.detail}; this server has a "
                       f"{backend.task} model: POST {endpoint}, GET /health, GET /metrics")
        return JSONResponse({"error": message}, status_code=e.status_code, headers=e.headers)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "task": backend.task, "endpoint": endpoint,
                "max_input_tokens": limit, "max_batch_size": settings.max_batch_size,
                "pending": admission.pending}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    if backend.task == "sentiment":
        @app.post("/predict")
        async def predict(request: Request) -> Response:
            async def work() -> Response:
                data = await body(request)
                check_fields(data, {"texts"}, {"texts"})
                texts = texts_field(data, settings.max_queue)
                guard(texts)
                return JSONResponse({"results": await batcher.submit(texts)})
            return await answer(work)

    elif backend.task == "translation":
        @app.post("/translate")
        async def translate(request: Request) -> Response:
            async def work() -> Response:
                data = await body(request)
                check_fields(data, {"texts", "beam_size"}, {"texts"})
                texts = texts_field(data, settings.max_queue)
                beam = integer(data, "beam_size", None, 1, settings.max_beam_size, nullable=True)
                guard(texts)
                # Texts batch together only with texts of the same beam size.
                return JSONResponse({"results": await batcher.submit(texts, key=beam)})
            return await answer(work)

    else:
        @app.post("/generate")
        async def generate(request: Request) -> Response:
            async def work() -> Response:
                data = await body(request)
                check_fields(data, GENERATE_FIELDS, set())
                prompt = data.get("prompt", "")
                if not isinstance(prompt, str):
                    raise invalid(f"'prompt' must be a string, got {type(prompt).__name__}")
                options = {
                    "max_new_tokens": integer(data, "max_new_tokens", 200, 0,
                                              settings.max_new_tokens),
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
                guard([prompt])
                run = backend.start_generation(prompt, **options)  # checks, computes nothing
                admission.admit(1)  # generation runs one request at a time per worker thread
                metrics.batch_size.labels(endpoint).observe(options["num_samples"])
                if stream:
                    return StreamingResponse(stream_lines(run), media_type="application/x-ndjson")
                try:
                    await asyncio.get_running_loop().run_in_executor(executor, drain, run)
                finally:
                    admission.release(1)
                return JSONResponse({"results": run.results()})
            return await answer(work)

    def drain(run: GenerationRun) -> None:
        for _ in run.pieces:
            pass

    async def stream_lines(run: GenerationRun) -> AsyncIterator[str]:
        """NDJSON: ``{"text": piece}`` as the text becomes final, then ``{"done": true,
        "prompt", "text", "tokens", "seconds"}`` (or ``{"error": ...}``)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        gone = threading.Event()  # the client left: stop generating

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def produce() -> None:
            try:
                for pieces in run.pieces:
                    if gone.is_set():
                        return
                    if pieces[0]:
                        put("text", pieces[0])
                put("done", None)
            except Exception as e:  # reported in the stream; headers are already sent
                log.exception("generation failed")
                put("error", f"internal error: {type(e).__name__}")
            finally:
                loop.call_soon_threadsafe(admission.release, 1)

        loop.run_in_executor(executor, produce)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "text":
                    yield json.dumps({"text": value}) + "\n"
                elif kind == "done":
                    yield json.dumps({"done": True, **run.results()[0]}) + "\n"
                    return
                else:
                    yield json.dumps({"error": value}) + "\n"
                    return
        finally:
            gone.set()

    return app
