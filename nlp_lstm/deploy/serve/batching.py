"""Dynamic batching: texts of concurrent requests that arrive within ``max_wait`` of the oldest
waiting one run together, up to ``max_batch_size`` texts, in an inference thread.

Admission is bounded: at most ``max_queue`` texts are accepted and unfinished at once (waiting
or running); beyond that ``submit`` raises ``QueueFullError`` at once, so overload is answered
quickly (503) instead of growing memory and latency without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any


class QueueFullError(Exception):
    """The server holds ``max_queue`` unfinished texts already."""


@dataclass
class _Item:
    text: str
    key: Hashable  # texts batch together only under equal keys (e.g. the same beam size)
    future: asyncio.Future
    arrived: float


class Admission:
    """Counts accepted, unfinished work against a bound."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the queue bound must be positive, got {limit}")
        self.limit = limit
        self.pending = 0

    def admit(self, n: int) -> None:
        if self.pending + n > self.limit:
            raise QueueFullError(f"the server is busy: {self.pending} texts are waiting or running "
                            f"(--max-queue {self.limit}); retry later")
        self.pending += n

    def release(self, n: int) -> None:
        self.pending -= n


class Batcher:
    """Runs ``run(key, texts) -> results`` (one result per text) on batches of waiting texts.

    Args:
        run: the batch function, called in ``executor`` (it may block).
        max_batch_size: texts per batch at most.
        max_wait: seconds a batch waits for more texts after its oldest one arrived.
        admission: the shared bound on unfinished work.
        workers: batches that run at once (each holds one executor thread).
        on_batch: called with each batch's size (for metrics).
    """

    def __init__(self, run: Callable[[Hashable, list[str]], Sequence[Any]], *,
                 max_batch_size: int, max_wait: float, admission: Admission, executor: Executor,
                 workers: int = 1, on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be positive, got {max_batch_size}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        self.run, self.max_batch_size, self.max_wait = run, max_batch_size, max_wait
        self.admission, self.executor, self.workers = admission, executor, workers
        self.on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(self, texts: Sequence[str], key: Hashable = None) -> list[Any]:
        """The results for ``texts``, in order; QueueFullError when they do not fit."""
        self.admission.admit(len(texts))
        loop = asyncio.get_running_loop()
        now = loop.time()
        items = [_Item(t, key, loop.create_future(), now) for t in texts]
        self._queue.extend(items)
        self._wake.set()
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        finally:
            # Texts of a cancelled request (client gone) are skipped when batches form.
            for item in items:
                item.future.cancel()
            self.admission.release(len(texts))

    def _ready(self, key: Hashable) -> int:
        return sum(item.key == key for item in self._queue)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            first = self._queue[0]
            deadline = first.arrived + self.max_wait
            while self._ready(first.key) < self.max_batch_size:
                left = deadline - loop.time()
                if left <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch, rest = [], deque()
            while self._queue:
                item = self._queue.popleft()
                if item.future.done():
                    continue  # cancelled
                if item.key == first.key and len(batch) < self.max_batch_size:
                    batch.append(item)
                else:
                    rest.append(item)
            self._queue = rest
            if not batch:
                continue
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                results = await loop.run_in_executor(
                    self.executor, self.run, first.key, [item.text for item in batch])
            except Exception as e:  # the requests get the error; the loop goes on
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(e)
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)
