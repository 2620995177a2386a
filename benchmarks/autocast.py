"""The encoder under CPU bfloat16 autocast where the CPU has no bfloat16 LSTM: which fallback?

    python -m benchmarks.autocast [--runs 10] [--warmup 1]
    ONEDNN_MAX_CPU_ISA=AVX2 python -m benchmarks.autocast   # oneDNN as on an AVX2-only CPU

Forward+backward of ``LSTMEncoder`` (B 64, T 50, E 256, H 256, L 2, bidirectional; all lengths
T, and lengths uniform in 10..50), median over interleaved rounds, ratio to the float32 fused
encoder without autocast in the same run. Candidates under ``torch.autocast("cpu", bfloat16)``:

- ``fallback fused float32``: impl="fused" with ``cpu_autocast_supported`` forced to False (what
  an AVX2-only CPU runs): the fused kernel in float32, outputs cast to bfloat16.
- ``loop bfloat16``: impl="loop", our recurrence with bfloat16 matmuls.
- ``native fused bfloat16``: impl="fused" as this CPU runs it, when it has a bfloat16 LSTM.

With ONEDNN_MAX_CPU_ISA=AVX2, oneDNN refuses the bfloat16 LSTM as on an AVX2-only CPU, and runs
bfloat16 matmuls on reference kernels; a real AVX2-only CPU runs them on PyTorch's own bfloat16
gemm, as slow for our loop in an ad-hoc check (benchmarks/results/RESULTS.md).

Legend: B batch, T time, E embedding (input) size, H hidden, L layers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from unittest import mock

import torch

from nlp_lstm.nn import LSTMEncoder
from nlp_lstm.nn.fused import cpu_autocast_supported

B, T, E, H, L = 64, 50, 256, 256, 2


def make_step(
    enc: LSTMEncoder, x: torch.Tensor, lengths: torch.Tensor | None, autocast: bool,
    supported: bool,
) -> Callable[[], None]:
    def step() -> None:
        with (torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast),
              mock.patch("nlp_lstm.nn.encoder.cpu_autocast_supported", return_value=supported)):
            out, (h, c) = enc(x, lengths)
        loss = out.float().sum() + h.float().sum() + c.float().sum()
        torch.autograd.grad(loss, [x, *enc.parameters()])

    return step


def build(lengths: torch.Tensor | None) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    fused = LSTMEncoder(E, H, L, bidirectional=True, impl="fused")
    loop = LSTMEncoder(E, H, L, bidirectional=True, impl="loop")
    loop.load_state_dict(fused.state_dict())
    x = torch.randn(B, T, E, requires_grad=True)
    steps = {
        "float32 fused, no autocast (baseline)": make_step(fused, x, lengths, False, True),
        "fallback fused float32": make_step(fused, x, lengths, True, False),
        "loop bfloat16": make_step(loop, x, lengths, True, True),
    }
    if cpu_autocast_supported("lstm", torch.bfloat16):
        steps["native fused bfloat16"] = make_step(fused, x, lengths, True, True)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, bfloat16 LSTM on this "
          f"CPU: {cpu_autocast_supported('lstm', torch.bfloat16)}, median of {args.runs} runs "
          f"after {args.warmup} warm-up rounds, forward+backward")
    print("| lengths | candidate | fwd+bwd ms | vs float32 |")
    print("|---|---|---:|---:|")
    torch.manual_seed(1)
    unequal = torch.randint(10, T + 1, (B,))
    unequal[0] = T
    for name, lengths in (("all T", None), ("10..50", unequal)):
        steps = build(lengths)
        times: dict[str, list[float]] = {label: [] for label in steps}
        for round_ in range(args.warmup + args.runs):
            for label, step in steps.items():  # interleaved: load drifts hit everyone alike
                start = time.perf_counter()
                step()
                if round_ >= args.warmup:
                    times[label].append(time.perf_counter() - start)
        base = statistics.median(next(iter(times.values())))
        for label, values in times.items():
            median = statistics.median(values)
            print(f"| {name} | {label} | {median * 1e3:.0f} | {median / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
