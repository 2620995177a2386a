"""Training throughput of ``LanguageModelNet`` on character-level shapes, and where the time goes.

    python -m benchmarks.lm_train [--runs 5] [--shapes a,b,...] [--breakdown] [--bf16]

One training step is what truncated BPTT on streams does: forward with the carried state,
cross-entropy over all B*T positions, backward, AdamW step, state detached. Every shape runs
once per round, interleaved (load drifts hit all alike), after warm-up rounds. The table gives
the best and the median step time, tokens/s = B*T / best step time, and the ratio of tokens/s
to the first shape (the baseline) measured in the same run. The best of N estimates the speed
on an idle machine (as ``timeit`` does): on a shared 2-core machine a busy neighbour makes the
two OpenMP threads wait for each other, and single steps take up to 10x longer.

``--breakdown`` times the parts of one step of each shape separately, forward+backward on
inputs of the right shape: the LSTM layers, the window attention (its combination included),
the output layer with the loss (and the projection to E, without attention), and the optimizer
step.

Shape names: ``E<embedding>-H<hidden>-L<layers>-B<batch>-T<steps>[-W<window>]``, V = 69 (Tiny
Shakespeare's characters); ``-W`` adds attention "window" with that W.

Legend: B batch, T time, E embedding size, H hidden, L layers, V vocab, W attention window.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nlp_lstm.generation.net import LanguageModelNet, LMState

VOCAB = 69
DEFAULT = ("E128-H512-L2-B64-T128,E128-H512-L2-B64-T128-W64,"
           "E256-H512-L2-B64-T128,E384-H512-L2-B64-T128,"
           "E128-H512-L3-B64-T128,E128-H512-L3-B64-T128-W64,"
           "E128-H256-L2-B64-T128,E128-H384-L2-B64-T128,E128-H384-L3-B64-T128,"
           "E128-H512-L2-B32-T128,E128-H512-L2-B128-T128,"
           "E128-H512-L2-B64-T64,E128-H512-L2-B64-T256")
NAME = re.compile(r"E(\d+)-H(\d+)-L(\d+)-B(\d+)-T(\d+)(?:-W(\d+))?$")


@dataclass
class Shape:
    name: str
    embedding: int
    hidden: int
    layers: int
    batch: int
    steps: int
    window: int | None

    @classmethod
    def parse(cls, name: str) -> Shape:
        match = NAME.match(name)
        if match is None:
            raise ValueError(f"shape {name!r} is not E<e>-H<h>-L<l>-B<b>-T<t>[-W<w>]")
        e, h, layers, b, t, w = match.groups()
        return cls(name, int(e), int(h), int(layers), int(b), int(t),
                   int(w) if w else None)

    def net(self) -> LanguageModelNet:
        return LanguageModelNet(VOCAB, embedding_dim=self.embedding,
                                encoder={"hidden_size": self.hidden, "num_layers": self.layers},
                                attention="window" if self.window else "none",
                                attention_window=self.window or 1)


def autocast(bf16: bool) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def make_step(shape: Shape, bf16: bool) -> tuple[Callable[[], None], int]:
    """A training step on random tokens (state carried, as on streams) and the parameters."""
    torch.manual_seed(0)
    net = shape.net().train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    tokens = torch.randint(0, VOCAB, (shape.batch, shape.steps + 1))  # (B, T+1)
    state: list[LMState | None] = [None]

    def step() -> None:
        with autocast(bf16):
            logits, new_state = net(tokens[:, :-1], state[0])  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state[0] = new_state.detach()

    return step, sum(p.numel() for p in net.parameters())


def make_parts(shape: Shape, bf16: bool) -> dict[str, Callable[[], None]]:
    """Forward+backward of each part of a step alone, on inputs of its shape."""
    torch.manual_seed(0)
    net = shape.net().train()
    B, T, E, H = shape.batch, shape.steps, shape.embedding, shape.hidden
    x = torch.randn(B, T, E, requires_grad=True)
    hidden = torch.randn(B, T, H, requires_grad=True)
    features = torch.randn(B, T, net.decoder.in_features, requires_grad=True)  # (B, T, O)
    targets = torch.randint(0, VOCAB, (B * T,))

    def lstm() -> None:
        with autocast(bf16):
            out = x
            for layer in net.layers:
                out, _ = layer(out)  # (B, T, H)
        out.float().sum().backward()

    def attention() -> None:
        with autocast(bf16):
            memory, mask = net.attend.empty_memory(hidden)
            out, _, _ = net.attend(hidden, memory, mask.fill_(True))  # (B, T, O)
        out.float().sum().backward()

    def output() -> None:
        with autocast(bf16):
            h = net.projection(hidden) if net.projection is not None else features  # (B, T, O)
            logits = net.decoder(h)  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets)
        loss.backward()

    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)

    parts = {"lstm": lstm, "output+loss": output, "adamw": optimizer.step}
    if net.attend is not None:
        parts["attention"] = attention
    return parts


def step_times(steps: dict[str, Callable[[], None]], runs: int, warmup: int
               ) -> dict[str, list[float]]:
    """Seconds of each run of each step, the steps interleaved round by round."""
    times: dict[str, list[float]] = {label: [] for label in steps}
    for round_ in range(warmup + runs):
        for label, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= warmup:
                times[label].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--shapes", default=DEFAULT)
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    args = parser.parse_args()
    shapes = [Shape.parse(name) for name in args.shapes.split(",")]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}, V {VOCAB}, best and median of "
          f"{args.runs} training steps after {args.warmup} warm-up rounds")
    built = {s.name: make_step(s, args.bf16) for s in shapes}
    times = step_times({name: step for name, (step, _) in built.items()}, args.runs,
                       args.warmup)
    best = {name: min(ts) for name, ts in times.items()}
    base = shapes[0].batch * shapes[0].steps / best[shapes[0].name]
    print("| shape | params | best ms | median ms | tokens/s | vs first |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in shapes:
        rate = s.batch * s.steps / best[s.name]
        print(f"| {s.name} | {built[s.name][1] / 1e6:.2f}M | {best[s.name] * 1e3:.0f} | "
              f"{statistics.median(times[s.name]) * 1e3:.0f} | {rate:,.0f} | "
              f"{rate / base:.2f}x |", flush=True)
    if not args.breakdown:
        return
    print("\nParts of a step, forward+backward each, best ms (share of their sum):")
    print("| shape | lstm | attention | output+loss | adamw | sum | whole step |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in shapes:
        parts = {k: min(ts) for k, ts in
                 step_times(make_parts(s, args.bf16), args.runs, args.warmup).items()}
        total = sum(parts.values())
        cells = [f"{parts[k] * 1e3:.0f} ({parts[k] / total:.0%})" if k in parts else "-"
                 for k in ("lstm", "attention", "output+loss", "adamw")]
        print(f"| {s.name} | {' | '.join(cells)} | {total * 1e3:.0f} | "
              f"{best[s.name] * 1e3:.0f} |", flush=True)


if __name__ == "__main__":
    main()
