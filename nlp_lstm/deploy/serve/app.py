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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from nlp_lstm.deploy.serve.backend import Backend
from nlp_lstm.deploy.serve.batching import Admission, Batcher, QueueFullError
from nlp_lstm.deploy.serve.endpoint import Call, Run, ServeSettings
from nlp_lstm.deploy.serve.metrics import Metrics, MetricsMiddleware
from nlp_lstm.deploy.serve.validation import RequestError, invalid, read_json

log = logging.getLogger("nlp_lstm.deploy.serve")

RETRY_AFTER_SECONDS = 1


def create_app(backend: Backend, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app serving ``backend``: its task's endpoint, ``/health`` and ``/metrics``."""
    settings = settings or ServeSettings()
    settings.check(backend.max_length)
    endpoint, model = backend.endpoint, backend.model
    path = endpoint.path
    limit = settings.max_input_tokens or backend.max_length
    metrics = Metrics()
    admission = Admission(settings.max_queue)
    metrics.pending.set_function(lambda: admission.pending)
    executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="nlp-lstm-infer")
    batcher: Batcher | None = None

    def run_batch(key: Hashable, inputs: list[Any]) -> list[dict[str, Any]]:
        return endpoint.run(model, inputs, key)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal batcher
        if endpoint.run is not None:
            batcher = Batcher(run_batch, max_batch_size=settings.max_batch_size,
                              max_wait=settings.max_wait_ms / 1000, admission=admission,
                              executor=executor, workers=settings.workers,
                              on_batch=metrics.batch_size.labels(path).observe)
            batcher.start()
        yield
        # uvicorn calls this after the requests in flight have been answered.
        if batcher is not None:
            await batcher.stop()
        executor.shutdown(wait=True)

    app = FastAPI(title="nlp-lstm", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(MetricsMiddleware, metrics=metrics,
                       endpoints={path, "/health", "/metrics"})

    def error_response(e: RequestError) -> JSONResponse:
        metrics.rejected.labels(path, e.reason).inc()
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

    def guard(inputs: list[Any]) -> None:
        """The input-length guard: 413 for the first input over ``limit``."""
        for i, item in enumerate(inputs):
            n = endpoint.length(model, item)
            if n > limit:
                raise RequestError(413, f"{endpoint.describe(i)} has {n} {endpoint.unit}, more "
                                   f"than the limit of {limit} (--max-input-tokens)", "too_long",
                                   limit=limit, length=n, index=i)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        message = e.detail
        if e.status_code in (404, 405):
            message = (f"{request.method} {request.url.path}: {e.detail}; this server has a "
                       f"{backend.task} model: POST {path}, GET /health, GET /metrics")
        return JSONResponse({"error": message}, status_code=e.status_code, headers=e.headers)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "task": backend.task, "endpoint": path,
                "max_input_tokens": limit, "max_batch_size": settings.max_batch_size,
                "pending": admission.pending}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def batched(call: Call) -> Response:
        return JSONResponse({"results": await batcher.submit(call.inputs, key=call.key)})

    async def unbatched(call: Call) -> Response:
        run = endpoint.start(model, call)  # checks, computes nothing
        admission.admit(1)  # one request at a time per worker thread
        metrics.batch_size.labels(path).observe(call.size or len(call.inputs))
        if call.stream:
            return StreamingResponse(stream_lines(run), media_type="application/x-ndjson")
        try:
            await asyncio.get_running_loop().run_in_executor(executor, drain, run)
        finally:
            admission.release(1)
        return JSONResponse({"results": run.results()})

    @app.post(path)
    async def serve(request: Request) -> Response:
        async def work() -> Response:
            data = await read_json(request.headers, request.stream(), settings.max_body_bytes)
            call = endpoint.parse(data, settings)
            guard(call.inputs)
            return await (batched(call) if endpoint.run is not None else unbatched(call))
        return await answer(work)

    def drain(run: Run) -> None:
        for _ in run.pieces:
            pass

    async def stream_lines(run: Run) -> AsyncIterator[str]:
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
