"""Forward+backward time and peak memory of ``LSTMEncoder`` against ``torch.nn.LSTM``.

    python -m benchmarks.encoder [--device cuda] [--runs 20] [--shapes S1,S2,S3]

Every candidate of a shape runs once per round, interleaved with the ``nn.LSTM`` baseline in the
same process, after warm-up rounds; the table reports medians and the ratio to the baseline's
median. Peak memory is the most memory held at once during one forward+backward, above what was
held before it (CUDA: the caching allocator's statistics; CPU: the profiler's allocation trace).

Shapes (E = I, the input size):
- S1 sentiment: B 64, lengths uniform in 16..128, E 300, H 256, L 2, bidirectional; the baseline
  is ``nn.LSTM`` on a ``PackedSequence`` (pack and unpack included).
- S2 seq2seq encoder: B 64, T 50, E 256, H 512, L 2, bidirectional.
- S3: B 64, T 100, I = H = 512, L 1.

Legend: B batch, T time, E embedding (input) size, H hidden, L layers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlp_lstm.nn import LSTMEncoder


@dataclass
class Shape:
    name: str
    batch: int
    steps: int
    input_size: int
    hidden: int
    layers: int
    bidirectional: bool
    min_length: int | None = None  # unequal lengths uniform in [min_length, steps]

    def describe(self) -> str:
        T = f"{self.min_length}..{self.steps}" if self.min_length else str(self.steps)
        return (f"{self.name} B{self.batch} T{T} I{self.input_size} H{self.hidden} "
                f"L{self.layers}{' bi' if self.bidirectional else ''}")


SHAPES = {
    "S1": Shape("S1", 64, 128, 300, 256, 2, True, min_length=16),
    "S2": Shape("S2", 64, 50, 256, 512, 2, True),
    "S3": Shape("S3", 64, 100, 512, 512, 1, False),
}
CANDIDATES = {  # label -> LSTMEncoder keyword arguments
    "auto": {"impl": "auto"},
    "fused": {"impl": "fused"},
    "loop": {"impl": "loop"},
    "loop+layer_norm": {"impl": "loop", "layer_norm": True},
}


def make_step(
    module: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None
) -> Callable[[], None]:
    """One forward+backward; gradients for the input and every parameter. nn.LSTM gets the
    batch packed when lengths differ."""
    targets = [x, *module.parameters()]

    def step() -> None:
        if isinstance(module, nn.LSTM) and lengths is not None:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, (h, c) = module(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        elif isinstance(module, nn.LSTM):
            out, (h, c) = module(x)
        else:
            out, (h, c) = module(x, lengths)
        torch.autograd.grad(out.sum() + h.sum() + c.sum(), targets)

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(step: Callable[[], None], device: torch.device) -> int:
    """Bytes held at the peak of one step above those held before it."""
    if device.type == "cuda":
        sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                profile_memory=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events
              if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0]
    if not totals:
        return 0
    start = totals[0] - next(e["args"]["Bytes"] for e in events if e.get("name") == "[memory]")
    return max(totals) - start


def build(shape: Shape, device: torch.device) -> tuple[dict[str, Callable[[], None]], str]:
    """The steps of every candidate on one seeded batch, and the baseline's label."""
    torch.manual_seed(0)
    B, T = shape.batch, shape.steps
    if shape.min_length:
        lengths = torch.randint(shape.min_length, shape.steps + 1, (B,))
        T = int(lengths.max())
    else:
        lengths = None
    x = torch.randn(B, T, shape.input_size, device=device, requires_grad=True)
    baseline = nn.LSTM(shape.input_size, shape.hidden, shape.layers, batch_first=True,
                       bidirectional=shape.bidirectional).to(device)
    baseline_label = "nn.LSTM" + (" packed" if lengths is not None else "")
    modules = {baseline_label: baseline}
    for label, kwargs in CANDIDATES.items():
        enc = LSTMEncoder(shape.input_size, shape.hidden, shape.layers,
                          bidirectional=shape.bidirectional, **kwargs).to(device)
        if not kwargs.get("layer_norm"):
            enc.load_state_dict(baseline.state_dict())
        modules[label] = enc
    return {label: make_step(m, x, lengths) for label, m in modules.items()}, baseline_label


def memory_of(name: str, label: str, device: str) -> int:
    """Peak memory of one candidate, measured after a warm-up step (run in a fresh process:
    the profiler's buffers would otherwise pile up in the timing process)."""
    steps, _ = build(SHAPES[name], torch.device(device))
    steps[label]()
    return peak_memory(steps[label], torch.device(device))


def bench_shape(name: str, device: torch.device, runs: int, warmup: int) -> list[dict]:
    steps, baseline_label = build(SHAPES[name], device)
    times: dict[str, list[float]] = {label: [] for label in steps}
    for round_ in range(warmup + runs):
        for label, step in steps.items():  # interleaved: load drifts hit everyone alike
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            if round_ >= warmup:
                times[label].append(time.perf_counter() - start)
    del steps
    memory = {}
    context = multiprocessing.get_context("spawn")
    for label in times:
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            memory[label] = pool.submit(memory_of, name, label, str(device)).result()
    base = statistics.median(times[baseline_label])
    rows = []
    for label in times:
        median = statistics.median(times[label])
        rows.append({"shape": SHAPES[name].describe(), "impl": label, "ms": median * 1e3,
                     "ratio": median / base, "memory_mb": memory[label] / 2**20,
                     "memory_ratio": memory[label] / memory[baseline_label]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--shapes", default="S1,S2,S3")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"median of {args.runs} runs after {args.warmup} warm-up rounds, forward+backward")
    print("| shape | impl | fwd+bwd ms | vs nn.LSTM | peak MB | memory vs nn.LSTM |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.shapes.split(","):
        for row in bench_shape(name, device, args.runs, args.warmup):
            print(f"| {row['shape']} | {row['impl']} | {row['ms']:.0f} | {row['ratio']:.2f}x "
                  f"| {row['memory_mb']:.0f} | {row['memory_ratio']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
