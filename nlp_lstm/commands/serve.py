"""``nlp-lstm serve --ckpt PATH|--onnx DIR [...]`` (also ``python -m tasks.serve``): serve a
checkpoint of any task, or an ONNX export on onnxruntime, over HTTP at its task's endpoint
(``nlp_lstm.deploy.serve``)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from nlp_lstm.core.cli import bad_input_exits
from nlp_lstm.deploy.serve.backend import Backend
from nlp_lstm.drivers.predict import add_model_arguments
from nlp_lstm.drivers.registry import TASKS, load_checkpoint, load_export

GRACEFUL_SHUTDOWN_SECONDS = 60


def CheckpointBackend(path: str | Path) -> Backend:  # noqa: N802 (reads as the class it builds)
    """A backend over a PyTorch checkpoint of a registered task."""
    task, model = load_checkpoint(path)
    return Backend(task.name, model, task.endpoint)


def OnnxBackend(path: str | Path, providers: str | Sequence[str] | None = None,  # noqa: N802
                threads: int | None = None) -> Backend:
    """A backend over an ONNX export (``nlp-lstm export``) run by ``nlp_lstm.deploy.runtime`` on the
    execution ``providers`` (default CPU)."""
    model = load_export(path, providers=providers, threads=threads)
    task = TASKS.get(model.task)
    if task is None:
        raise ValueError(f"{path} is a {model.task!r} export; the server knows the tasks "
                         f"{sorted(TASKS)}")
    return Backend(task.name, model, task.endpoint)


def load_backend(ckpt: str | Path | None = None, onnx: str | Path | None = None,
                 providers: str | Sequence[str] | None = None) -> Backend:
    """The backend for a checkpoint file or (exclusively) an ONNX export directory."""
    if (ckpt is None) == (onnx is None):
        raise ValueError("give exactly one of a checkpoint (--ckpt PATH) and an ONNX export "
                         "(--onnx DIR)")
    if onnx is not None:
        return OnnxBackend(onnx, providers)
    if providers is not None:
        raise ValueError(f"--provider {providers} applies to --onnx DIR; a checkpoint runs on "
                         "PyTorch")
    return CheckpointBackend(ckpt)


def parse_args(argv: Sequence[str] | None, prog: str) -> argparse.Namespace:
    endpoints = ", ".join(f"{t.endpoint.path} ({t.name})" for t in TASKS.values()
                          if t.endpoint is not None)
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Serve a model over HTTP with dynamic batching: POST {endpoints}; "
                    "GET /health, /metrics.")
    add_model_arguments(parser, quantize=False)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch-size", type=int, default=32,
                        help="texts per model call at most")
    parser.add_argument("--max-wait-ms", type=float, default=10.0,
                        help="how long a batch waits for more texts after its first")
    parser.add_argument("--max-input-tokens", type=int, default=None,
                        help="longer texts get 413 (default: the model's max_length)")
    parser.add_argument("--workers", type=int, default=1,
                        help="inference threads: batches (or generations) run at once")
    parser.add_argument("--max-queue", type=int, default=1024,
                        help="texts accepted and unfinished at most; beyond, 503")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20,
                        help="larger request bodies get 413")
    parser.add_argument("--max-new-tokens", type=int, default=1024,
                        help="generation: the largest max_new_tokens a request may ask")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, prog: str = "python -m tasks.serve") -> None:
    args = parse_args(argv, prog)
    with bad_input_exits():
        import uvicorn

        from nlp_lstm.deploy.serve.app import create_app
        from nlp_lstm.deploy.serve.endpoint import ServeSettings

        if not 0 <= args.port <= 65535:
            raise ValueError(f"--port must be in [0, 65535], got {args.port}")
        backend = load_backend(args.ckpt, args.onnx, args.provider)
        settings = ServeSettings(
            max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
            max_input_tokens=args.max_input_tokens, workers=args.workers,
            max_queue=args.max_queue, max_body_bytes=args.max_body_bytes,
            max_new_tokens=args.max_new_tokens)
        app = create_app(backend, settings)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            access_log=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    # uvicorn drains the requests in flight on SIGTERM, then raises the signal again: exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.Server(config).run()
