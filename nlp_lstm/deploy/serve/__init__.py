"""Serving models over HTTP: a task's endpoint (``endpoint.py``, standard library only), dynamic
batching, the FastAPI app.

The names below load on first use, so that task packages can import ``endpoint`` and
``validation`` to define their endpoints without importing FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nlp_lstm.lazy import lazy_attributes

if TYPE_CHECKING:
    from nlp_lstm.deploy.serve.app import create_app
    from nlp_lstm.deploy.serve.backend import Backend
    from nlp_lstm.deploy.serve.endpoint import Call, Endpoint, ServeSettings

_HOMES = {"create_app": "nlp_lstm.deploy.serve.app", "Backend": "nlp_lstm.deploy.serve.backend",
          "Call": "nlp_lstm.deploy.serve.endpoint", "Endpoint": "nlp_lstm.deploy.serve.endpoint",
          "ServeSettings": "nlp_lstm.deploy.serve.endpoint"}

__all__ = ["Backend", "Call", "Endpoint", "ServeSettings", "create_app"]

__getattr__ = lazy_attributes(__name__, _HOMES)
