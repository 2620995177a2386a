"""Shared fixtures: config composition and one tiny trained checkpoint for the whole session."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nlp_lstm.core.cli import CONFIG_DIR

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test``), the workers share the cores: each takes its share of
    threads, in process and in the commands it starts, so that no thread pool waits on another."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)

# Small enough to train in seconds, large enough that the model must learn something.
TINY = [
    "data.source.num_examples=600",
    "data.loader.batch_size=32",
    "model.embedding_dim=32",
    "model.encoder.hidden_size=32",
    "model.scheduler.warmup_steps=5",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads; a busy machine makes thread pools wait."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose_train(output_dir: Path, overrides: list[str] = ()) -> DictConfig:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}",
                                           f"paths.cache_dir={output_dir}/cache", *overrides])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding a tiny sentiment model trained through the real train()."""
    from nlp_lstm.drivers.train import train

    out = tmp_path_factory.mktemp("run")
    train(compose_train(out, TINY))
    return out


@pytest.fixture(scope="session")
def checkpoint(trained_run: Path) -> Path:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    return Path(metrics["checkpoint"])


class HTTPFiles:
    """Serves ``files``; paths in ``truncated`` announce the full length and send half."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.chunked_truncated: set[str] = set()
        self.hits: Counter[str] = Counter()
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture
def server() -> Iterator[HTTPFiles]:
    state = HTTPFiles()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            if self.path in state.chunked_truncated:
                # One whole chunk, then half of the next one, then the connection closes.
                half = len(data) // 2
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%x\r\n%s\r\n" % (half, data[:half]))
                self.wfile.write(b"%x\r\n%s" % (half, data[half : half + half // 2]))
                self.wfile.flush()
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.path in state.truncated:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
            else:
                self.wfile.write(data)

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(backend: Any, **settings: Any) -> Iterator[str]:
    """The app in a uvicorn server on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    from nlp_lstm.deploy.serve import ServeSettings, create_app

    config = uvicorn.Config(create_app(backend, ServeSettings(**settings)), host="127.0.0.1",
                            port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
