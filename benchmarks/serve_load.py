"""Load test of the HTTP server on a sentiment or translation checkpoint: throughput and
latency with dynamic batching against the same server with ``--max-batch-size 1``, measured in
the same run.

    python -m benchmarks.serve_load --ckpt PATH [--requests 2000] [--concurrency 64]
        [--max-wait-ms 10] [--threads 1] [--warmup 200] [--client-processes 1] [--texts FILE]

For each batch size the server runs as a subprocess on 127.0.0.1 (a free port); ``--warmup``
requests come first, then ``--requests`` requests of one text each (``--texts`` lines, or
sentences of the task's embedded corpus) to ``/predict`` or ``/translate``, from
``--concurrency`` concurrent clients (httpx, async, in ``--client-processes`` processes). Every
answer is checked against ``predict`` / ``translate`` called directly (labels equal and
probabilities, rounded to 6 digits, within 1e-6; translations equal and scores within 1e-4,
where a batch's composition moves the last float bits). Reported: errors, mismatches, p50/p99
latency, requests/s, the mean batch size (from /metrics), the server's CPU time per request,
and its resident memory after warm-up and after the load. The clients share the CPU with the
server: on a small machine they take a real part of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


ENDPOINTS = {"sentiment": "/predict", "translation": "/translate"}


def same(got: dict[str, Any], want: dict[str, Any]) -> tuple[bool, bool]:
    """(equal within float noise, exactly equal). Sentiment: labels equal, probabilities (6
    digits) within one rounding step; translation: the same translation, scores within 1e-4
    (a batch's padding moves the last float bits)."""
    if "translation" in want:
        close = (got["source"] == want["source"] and got["translation"] == want["translation"]
                 and abs(got["score"] - want["score"]) <= 1e-4)
    else:
        close = got["text"] == want["text"] and got["label"] == want["label"] and all(
            abs(got["probs"][k] - v) <= 1.01e-6 for k, v in want["probs"].items())
    return close, got == want


async def drive(url: str, texts: list[str], expected: list[dict[str, Any]] | None,
                concurrency: int, endpoint: str = "/predict") -> dict[str, Any]:
    """Send one request per text from ``concurrency`` clients; latency per request."""
    latencies: list[float] = []
    counts = {"errors": 0, "mismatches": 0, "inexact": 0}
    next_index = iter(range(len(texts)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client(http: httpx.AsyncClient) -> None:
        for i in next_index:
            start = time.perf_counter()
            try:
                r = await http.post(f"{url}{endpoint}", json={"texts": [texts[i]]})
            except httpx.HTTPError:
                counts["errors"] += 1
                continue
            latencies.append(time.perf_counter() - start)
            if r.status_code != 200:
                counts["errors"] += 1
            elif expected is not None:
                close, exact = same(r.json()["results"][0], expected[i])
                counts["mismatches"] += not close
                counts["inexact"] += close and not exact

    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return {**counts, "seconds": seconds, "latencies": latencies}


def drive_slice(url: str, texts: list[str], expected: list[dict[str, Any]] | None,
                concurrency: int, endpoint: str) -> dict[str, Any]:
    return asyncio.run(drive(url, texts, expected, concurrency, endpoint))


def drive_processes(url: str, texts: list[str], expected: list[dict[str, Any]] | None,
                    concurrency: int, processes: int, endpoint: str) -> dict[str, Any]:
    """``drive`` split over ``processes`` client processes (one Python process cannot send
    requests as fast as the server answers them); wall time from the first start to the last
    end."""
    if processes == 1:
        return drive_slice(url, texts, expected, concurrency, endpoint)
    ctx = multiprocessing.get_context("spawn")
    parts = [(url, texts[p::processes], None if expected is None else expected[p::processes],
              max(1, concurrency // processes), endpoint) for p in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        warm = [(url, ["warm"], None, 1, endpoint)] * processes
        list(pool.map(drive_slice, *zip(*warm, strict=True)))
        start = time.perf_counter()
        results = list(pool.map(drive_slice, *zip(*parts, strict=True)))
        seconds = time.perf_counter() - start
    merged: dict[str, Any] = {k: sum(r[k] for r in results)
                              for k in ("errors", "mismatches", "inexact")}
    return {**merged, "seconds": seconds,
            "latencies": [x for r in results for x in r["latencies"]]}


def batch_mean(metrics: str, endpoint: str) -> float:
    total = re.search(rf'nlp_lstm_batch_size_sum\{{endpoint="{endpoint}"\}} (\S+)', metrics)
    count = re.search(rf'nlp_lstm_batch_size_count\{{endpoint="{endpoint}"\}} (\S+)', metrics)
    return float(total.group(1)) / max(1.0, float(count.group(1)))


def run_server(args: argparse.Namespace, batch_size: int, texts: list[str],
               expected: list[dict[str, Any]], endpoint: str) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "tasks.serve", "--ckpt", args.ckpt, "--port", str(port),
         "--max-batch-size", str(batch_size), "--max-wait-ms", str(args.max_wait_ms),
         "--max-queue", str(max(1024, args.concurrency)), "--log-level", "warning"],
        cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server (batch {batch_size}) did not start")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            time.sleep(0.2)
        warm = asyncio.run(drive(url, texts[: args.warmup], None, args.concurrency, endpoint))
        rss_warm, cpu_start = rss_mib(server.pid), cpu_seconds(server.pid)
        load = drive_processes(url, texts, expected, args.concurrency, args.client_processes,
                               endpoint)
        rss_after, cpu = rss_mib(server.pid), cpu_seconds(server.pid) - cpu_start
        mean_batch = batch_mean(httpx.get(f"{url}/metrics").text, endpoint)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    lat = load.pop("latencies")
    return {"max_batch_size": batch_size, **load, "warmup_errors": warm["errors"],
            "requests_per_s": len(texts) / load["seconds"],
            "p50_ms": 1000 * percentile(lat, 50), "p99_ms": 1000 * percentile(lat, 99),
            "mean_batch": mean_batch, "server_cpu_ms_per_request": 1000 * cpu / len(texts),
            "rss_warm_mib": rss_warm, "rss_after_mib": rss_after,
            "rss_growth": rss_after / rss_warm - 1}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="a sentiment or translation checkpoint")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--client-processes", type=int, default=1,
                        help="client processes sharing the concurrency (more when one client "
                             "process is the bottleneck)")
    parser.add_argument("--texts", metavar="FILE",
                        help="request texts, one per line (cycled), e.g. SST-2 dev sentences or "
                             "Multi30k German sources; default: the task's embedded corpus")
    args = parser.parse_args(argv)

    import torch

    from nlp_lstm.drivers.registry import load_model
    from nlp_lstm.training.checkpoint import read_checkpoint

    torch.set_num_threads(args.threads)
    task = read_checkpoint(args.ckpt)["nlp_lstm"].get("task")
    if task not in ENDPOINTS:
        raise SystemExit(f"error: {args.ckpt} is a {task!r} checkpoint; expected one of "
                         f"{sorted(ENDPOINTS)}")
    endpoint = ENDPOINTS[task]
    if args.texts:
        lines = [line.strip() for line in Path(args.texts).read_text("utf-8").splitlines()]
        pool = [line for line in lines if line]
        if not pool:
            raise SystemExit(f"error: {args.texts} has no text")
        texts = [pool[i % len(pool)] for i in range(args.requests)]
    elif task == "sentiment":
        from nlp_lstm.sentiment.corpus import generate_sentiment
        texts = [e.text for e in generate_sentiment(args.requests, seed=12345)]
    else:
        from nlp_lstm.translation.corpus import generate_translation
        texts = [p.source for p in generate_translation(args.requests, seed=12345)]
    model = load_model(args.ckpt, task=task)
    expected: list[dict[str, Any]] = []
    for i in range(0, len(texts), 64):
        chunk = texts[i : i + 64]
        if task == "sentiment":
            expected += model.predict(chunk)[0]
        else:  # the server's answer: the best hypothesis at the model's beam size
            expected += [{"source": t, "translation": r[0]["translation"], "score": r[0]["score"]}
                         for t, r in zip(chunk, model.translate(chunk)[0], strict=True)]
    del model

    rows = [run_server(args, b, texts, expected, endpoint) for b in (32, 1)]
    print(f"{args.requests} requests (one text each), {args.concurrency} concurrent clients in "
          f"{args.client_processes} process(es), "
          f"--max-wait-ms {args.max_wait_ms}, {args.threads} server thread(s)")
    print(f"{'max batch':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10} "
          f"{'errors':>6} {'mismatch':>8} {'RSS warm':>9} {'RSS after':>9} {'CPU ms/req':>10}")
    for r in rows:
        print(f"{r['max_batch_size']:>9} {r['requests_per_s']:>8.1f} {r['p50_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['mean_batch']:>10.1f} {r['errors']:>6} "
              f"{r['mismatches']:>8} {r['rss_warm_mib']:>8.1f}M {r['rss_after_mib']:>8.1f}M "
              f"{r['server_cpu_ms_per_request']:>10.2f}")
    ratio = rows[0]["requests_per_s"] / rows[1]["requests_per_s"]
    print(f"throughput ratio, batch 32 / batch 1: {ratio:.2f}x")
    print(json.dumps({"requests": args.requests, "concurrency": args.concurrency,
                      "throughput_ratio": round(ratio, 3),
                      "runs": [{k: round(v, 4) if isinstance(v, float) else v
                                for k, v in r.items()} for r in rows]}))
    if any(r["errors"] or r["mismatches"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
