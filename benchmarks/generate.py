"""Generation speed of ``LanguageModelNet``: time per generated token at several text positions,
for batch 1 and batch 32, with and without window attention.

    python -m benchmarks.generate [--positions 100,1000,10000] [--tokens 50] [--runs 5]
        [--threads N]

For each position p the net reads a random prompt of p tokens in one forward call (batch 1; the
state is then repeated for larger batches), and ``nn.sampling.sample`` draws ``--tokens`` more
(temperature 0.8, top-k 20, top-p 0.95, repetition penalty 1.1, so every processor runs). The
table gives the best (over runs) mean time per generated step, tokens/s (batch / step time) and
the ratio of the step time to the first row's (attention none, batch 1, the first position)
measured in the same run: flat across positions means the cost per token does not grow with
the text. Every case runs once unmeasured, then the runs go in rounds over all cases. (Best,
not median: on a shared machine a busy neighbour inflates single runs.)
Untrained weights: speed does not depend on them.

Legend: B batch, E embedding size, H hidden, L layers, V vocab, W attention window.
"""

from __future__ import annotations

import argparse
import time

import torch

from nlp_lstm.generation.net import LanguageModelNet
from nlp_lstm.nn.sampling import sample

VOCAB = 69


def build(attention: str, args: argparse.Namespace) -> LanguageModelNet:
    torch.manual_seed(0)
    return LanguageModelNet(VOCAB, embedding_dim=args.embedding,
                            encoder={"hidden_size": args.hidden, "num_layers": args.layers},
                            attention=attention, attention_window=args.window).eval()


class Case:
    """One row of the table: a net, a prompt of ``position`` tokens read once, ``batch`` rows."""

    def __init__(self, net: LanguageModelNet, attention: str, position: int, batch: int) -> None:
        self.net, self.attention, self.position, self.batch = net, attention, position, batch
        with torch.no_grad():
            prompt = torch.randint(0, VOCAB, (1, position))  # (1, P)
            logits, state = net.prompt(prompt)  # (1, V)
        self.state = state.repeat_interleave(batch)
        self.logits = logits.repeat_interleave(batch, dim=0)  # (B, V)
        self.times: list[float] = []

    @torch.no_grad()
    def run(self, tokens: int, seed: int) -> None:
        """Time one sample of ``tokens`` steps; keeps the mean seconds per step."""
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        out = sample(self.net.step, self.state, self.logits, tokens, temperature=0.8, top_k=20,
                     top_p=0.95, repetition_penalty=1.1, generator=generator)
        self.times.append((time.perf_counter() - start) / out.tokens.size(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", default="100,1000,10000")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--embedding", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    positions = [int(p) for p in args.positions.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, V {VOCAB} "
          f"E {args.embedding} H {args.hidden} L {args.layers}, window W {args.window}, "
          f"best of {args.runs} runs of {args.tokens} tokens")
    print("| attention | batch | position | ms/step | tokens/s | vs first |")
    print("|---|---:|---:|---:|---:|---:|")
    cases = [Case(build(attention, args), attention, position, batch)
             for attention in ("none", "window") for batch in batches for position in positions]
    # Every case once unmeasured (allocation, kernel selection), then rounds over all cases,
    # so drifts in machine load hit every row alike.
    for case in cases:
        case.run(args.tokens, seed=0)
        case.times.clear()
    for run in range(args.runs):
        for case in cases:
            case.run(args.tokens, seed=run + 1)
    base = min(cases[0].times)
    for case in cases:
        seconds = min(case.times)
        print(f"| {case.attention} | {case.batch} | {case.position:,} | {seconds * 1e3:.2f} | "
              f"{case.batch / seconds:,.0f} | {seconds / base:.2f}x |", flush=True)

if __name__ == "__main__":
    main()
