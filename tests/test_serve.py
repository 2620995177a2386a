"""The HTTP server (``nlp_lstm.deploy.serve``) on 127.0.0.1: every endpoint answers what the direct
Python call returns, every bad request gets its status and a JSON error, a full queue gets 503,
/metrics counts, streaming equals non-streaming, and SIGTERM loses no accepted request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, compose_train, free_port, serving

from nlp_lstm.commands.serve import CheckpointBackend
from nlp_lstm.commands.serve import main as serve_main
from nlp_lstm.drivers.train import train

QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]
# The tiny models of tests/test_translation.py and tests/test_generation.py.
TRANSLATION = ["task=translation", "data.source.num_examples=300", "data.loader.batch_size=32",
               "model.embedding_dim=16", "model.hidden_size=32", "model.encoder.hidden_size=16",
               "model.encoder.num_layers=1", "model.decoder_layers=1", "trainer.max_epochs=1",
               "beam_size=2", *QUIET]
GENERATION = ["task=generation", "data.source.num_documents=120", "data.loader.batch_size=8",
              "data.seq_len=32", "model.embedding_dim=16", "model.encoder.hidden_size=24",
              "model.attention_window=16", "model.scheduler.warmup_steps=2",
              "trainer.max_epochs=1", *QUIET]
TEXTS = ["the plot was not good .", "the acting was dull at first , but brilliant in the end .",
         "although the cast was superb , the script was awful .", "this film is great ."]


def trained(tmp_path_factory: pytest.TempPathFactory, name: str, overrides: list[str]) -> Path:
    out = tmp_path_factory.mktemp(name)
    train(compose_train(out, overrides))
    return Path(json.loads((out / "metrics.json").read_text())["checkpoint"])


@pytest.fixture(scope="module")
def sentiment(checkpoint: Path) -> CheckpointBackend:
    return CheckpointBackend(checkpoint)


@pytest.fixture(scope="module")
def translation(tmp_path_factory: pytest.TempPathFactory) -> CheckpointBackend:
    return CheckpointBackend(trained(tmp_path_factory, "serve_translation", TRANSLATION))


@pytest.fixture(scope="module")
def generation(tmp_path_factory: pytest.TempPathFactory) -> CheckpointBackend:
    return CheckpointBackend(trained(tmp_path_factory, "serve_generation", GENERATION))


def without_seconds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in results]


async def post_all(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(client.post(url, json=b) for b in bodies))


# ------------------------------------------------------------- answers
def test_predict_equals_the_direct_call_and_batches_concurrent_requests(sentiment, one_thread):
    with serving(sentiment, max_wait_ms=300) as url:
        r = httpx.post(f"{url}/predict", json={"texts": TEXTS})
        assert r.status_code == 200
        assert r.json() == {"results": sentiment.model.predict(TEXTS)[0]}
        # Requests arriving within max_wait_ms run as one batch: each gets its own answer.
        responses = asyncio.run(post_all(f"{url}/predict", [{"texts": [t]} for t in TEXTS]))
        for text, r in zip(TEXTS, responses, strict=True):
            assert r.status_code == 200
            [got], [direct] = r.json()["results"], sentiment.model.predict([text])[0]
            assert got["text"] == text and got["label"] == direct["label"]
            assert got["probs"] == pytest.approx(direct["probs"], abs=2e-6)  # 6 digits
        metrics = httpx.get(f"{url}/metrics").text
    # Two model calls in all: one per batch of 4 texts.
    assert 'nlp_lstm_batch_size_count{endpoint="/predict"} 2.0' in metrics
    assert 'nlp_lstm_batch_size_sum{endpoint="/predict"} 8.0' in metrics


def test_translate_equals_the_direct_call(translation, one_thread):
    model = translation.model
    sources = [" ".join(s.split()[:6]) for s in TEXTS]
    with serving(translation) as url:
        r = httpx.post(f"{url}/translate", json={"texts": sources})
        assert r.status_code == 200 and r.json() == {"results": model.predict(sources)[0]}
        for beam in (1, 3):
            r = httpx.post(f"{url}/translate", json={"texts": sources, "beam_size": beam})
            direct = model.translate(sources, beam_size=beam)[0]
            assert r.status_code == 200
            assert [x["translation"] for x in r.json()["results"]] == \
                [d[0]["translation"] for d in direct]
            assert [x["score"] for x in r.json()["results"]] == [d[0]["score"] for d in direct]


def test_generate_equals_the_direct_call_and_streams_the_same_text(generation, one_thread):
    model = generation.model
    greedy = {"prompt": "the cat", "max_new_tokens": 40, "temperature": 0}
    sampled = {"prompt": "the", "max_new_tokens": 30, "temperature": 0.8, "top_k": 5,
               "top_p": 0.9, "repetition_penalty": 1.1, "seed": 7, "num_samples": 2,
               "stop": ["."]}
    with serving(generation) as url:
        for request in (greedy, sampled):
            r = httpx.post(f"{url}/generate", json=request)
            assert r.status_code == 200
            direct = model.generate(request["prompt"], **{k: v for k, v in request.items()
                                                          if k != "prompt"})
            assert without_seconds(r.json()["results"]) == without_seconds(direct)
        with httpx.stream("POST", f"{url}/generate", json={**greedy, "stream": True}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/x-ndjson")
            lines = [json.loads(line) for line in r.iter_lines() if line]
    whole = model.generate("the cat", max_new_tokens=40, temperature=0.0)[0]
    assert len(lines) > 2 and lines[-1]["done"] is True
    assert "".join(line["text"] for line in lines[:-1]) == whole["text"]
    assert without_seconds([lines[-1]]) == [{"done": True, **without_seconds([whole])[0]}]


# ------------------------------------------------------------- bad requests
SENTIMENT_BAD = [
    (b'{"texts": ["good"', 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not UTF-8"),
    (b'["good"]', 422, "expected a JSON object"),
    (b"{}", 422, "missing field(s) ['texts']"),
    (b'{"texts": "good"}', 422, "'texts' must be a non-empty list"),
    (b'{"texts": []}', 422, "'texts' must be a non-empty list"),
    (b'{"texts": ["good", 3]}', 422, "texts[1] must be a string, got 3"),
    (b'{"texts": ["good", "  "]}', 422, "texts[1] is empty"),
    (b'{"texts": ["good"], "beam": 2}', 422, "unknown field(s) ['beam']"),
    (json.dumps({"texts": ["the plot was good . " * 3]}).encode(), 413,
     "texts[0] has 15 tokens, more than the limit of 8"),
    (json.dumps({"texts": ["x"] * 6}).encode(), 413, "6 texts, more than"),
    (json.dumps({"texts": ["good " * 100]}).encode(), 413, "more than the limit of 400 bytes"),
]


def test_every_bad_request_gets_its_status_and_a_json_error(sentiment, one_thread):
    with serving(sentiment, max_input_tokens=8, max_queue=5, max_body_bytes=400) as url:
        for body, status, message in SENTIMENT_BAD:
            r = httpx.post(f"{url}/predict", content=body,
                           headers={"content-type": "application/json"})
            assert r.status_code == status, (body, r.text)
            assert message in r.json()["error"], (body, r.text)
        r = httpx.post(f"{url}/predict", json={"texts": ["the plot was good . " * 3]})
        assert r.json()["limit"] == 8 and r.json()["length"] == 15
        # A body without Content-Length (chunked) is cut at the limit as well.
        r = httpx.post(f"{url}/predict", content=iter([b'{"texts": ["', b"a" * 500, b'"]}']))
        assert r.status_code == 413 and "400 bytes" in r.json()["error"]
        for method, path, status in (("GET", "/predict", 405), ("POST", "/translate", 404)):
            r = httpx.request(method, f"{url}{path}")
            assert r.status_code == status and "POST /predict" in r.json()["error"]
        # Still serving, and the rejections are counted.
        assert httpx.post(f"{url}/predict", json={"texts": ["good"]}).status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
    assert 'nlp_lstm_rejected_total{endpoint="/predict",reason="too_long"} 2.0' in metrics
    assert 'nlp_lstm_rejected_total{endpoint="/predict",reason="bad_json"} 2.0' in metrics
    assert 'nlp_lstm_requests_total{endpoint="/predict",status="422"} 7.0' in metrics
    assert 'nlp_lstm_requests_total{endpoint="/predict",status="200"} 1.0' in metrics
    assert 'nlp_lstm_request_seconds_count{endpoint="/predict",status="413"} 5.0' in metrics
    assert 'nlp_lstm_requests_total{endpoint="other",status="404"} 1.0' in metrics


def test_bad_translation_and_generation_requests(translation, generation, one_thread):
    with serving(translation) as url:
        for beam, message in ((0, "'beam_size' must be in [1, 16], got 0"),
                              ("2", "'beam_size' must be an integer or null, got \"2\"")):
            r = httpx.post(f"{url}/translate", json={"texts": ["a b"], "beam_size": beam})
            assert r.status_code == 422 and r.json() == {"error": message}
    bad = [
        ({"temperature": -1}, 422, "temperature must be >= 0"),
        ({"temperature": "hot"}, 422, "'temperature' must be a finite number"),
        ({"top_p": 0}, 422, "top_p must be in (0, 1]"),
        ({"top_k": 3, "temperature": 0}, 422, "temperature=0 is greedy"),
        ({"top_k": 2.5}, 422, "'top_k' must be an integer"),
        ({"repetition_penalty": 0}, 422, "repetition_penalty must be > 0"),
        ({"seed": True}, 422, "'seed' must be an integer or null"),
        ({"num_samples": 2, "stream": True}, 422, "'stream' sends one sample"),
        ({"max_new_tokens": 5000}, 422, "'max_new_tokens' must be in [0, 1024]"),
        ({"stop": [""]}, 422, "'stop' must be a non-empty string"),
        ({"prompt": 5}, 422, "'prompt' must be a string"),
        ({"prompt": "the cat Ü"}, 422, "characters the model never saw"),
        ({"prompt": "the cat sat. " * 4}, 413, "the prompt has 52 tokens, more than the limit"),
    ]
    with serving(generation, max_input_tokens=50) as url:
        for body, status, message in bad:
            r = httpx.post(f"{url}/generate", json={"prompt": "the", **body})
            assert r.status_code == status, (body, r.text)
            assert message in r.json()["error"], (body, r.text)
        assert httpx.get(f"{url}/health").json()["task"] == "generation"


def test_a_full_queue_gets_503_with_retry_after(sentiment, one_thread):
    with serving(sentiment, max_queue=2, max_wait_ms=1500) as url:
        responses = asyncio.run(post_all(f"{url}/predict", [{"texts": [t]} for t in TEXTS]))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 200, 503, 503]
        for r in responses:
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1" and "--max-queue 2" in r.json()["error"]
        assert httpx.get(f"{url}/health").json()["pending"] == 0


# ------------------------------------------------------------- the command
def test_sigterm_lets_accepted_requests_complete(checkpoint, sentiment):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tasks.serve", "--ckpt", str(checkpoint), "--port", str(port),
         "--max-wait-ms", "1000", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            time.sleep(0.1)

        async def load() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as client:
                tasks = [asyncio.create_task(client.post(f"{url}/predict", json={"texts": [t]}))
                         for t in TEXTS * 4]
                while (await client.get(f"{url}/health")).json()["pending"] < len(tasks):
                    await asyncio.sleep(0.02)  # all 16 accepted, waiting for their batch
                server.send_signal(signal.SIGTERM)
                return await asyncio.gather(*tasks)

        responses = asyncio.run(load())
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    for text, r in zip(TEXTS * 4, responses, strict=True):
        [got], [direct] = r.json()["results"], sentiment.model.predict([text])[0]
        assert r.status_code == 200 and got["label"] == direct["label"]
        assert got["probs"] == pytest.approx(direct["probs"], abs=2e-6)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


def test_the_command_refuses_bad_settings(checkpoint, capsys):
    for args, message in ((["--max-input-tokens", "100000"], "max_input_tokens must be in [1,"),
                          (["--max-batch-size", "0"], "max_batch_size must be positive"),
                          (["--ckpt", "/nonexistent.ckpt"], "checkpoint not found")):
        with pytest.raises(SystemExit) as e:
            serve_main(["--ckpt", str(checkpoint), *args])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
