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
the text. (Best, not median: on a shared machine a busy neighbour inflates single runs.)
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


@torch.no_grad()
def step_time(net: LanguageModelNet, position: int, batch: int, tokens: int, runs: int) -> float:
    """Best of ``runs`` mean seconds per generated step after a prompt of ``position`` tokens."""
    prompt = torch.randint(0, VOCAB, (1, position))  # (1, P)
    logits, state = net.prompt(prompt)  # (1, V)
    state, logits = state.repeat_interleave(batch), logits.repeat_interleave(batch, dim=0)
    times = []
    for run in range(runs + 1):  # the first run warms up
        generator = torch.Generator().manual_seed(run)
        start = time.perf_counter()
        out = sample(net.step, state, logits, tokens, temperature=0.8, top_k=20, top_p=0.95,
                     repetition_penalty=1.1, generator=generator)
        elapsed = time.perf_counter() - start
        if run:
            times.append(elapsed / out.tokens.size(1))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", default="100,1000,10000")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--embedding", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=3)
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
    base = None
    for attention in ("none", "window"):
        net = build(attention, args)
        for batch in batches:
            for position in positions:
                seconds = step_time(net, position, batch, args.tokens, args.runs)
                base = base or seconds
                print(f"| {attention} | {batch} | {position:,} | {seconds * 1e3:.2f} | "
                      f"{batch / seconds:,.0f} | {seconds / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
