"""Serving models over HTTP: a backend interface, dynamic batching, the FastAPI app."""

from nlp_lstm.serve.app import ServeSettings, create_app
from nlp_lstm.serve.backend import (
    Backend,
    CheckpointBackend,
    GenerationRun,
    OnnxBackend,
    load_backend,
)

__all__ = ["Backend", "CheckpointBackend", "GenerationRun", "OnnxBackend", "ServeSettings",
           "create_app", "load_backend"]
