"""Training speed of the document classifier on whole IMDB reviews: real tokens per second of
a forward+backward step, one pass over each whole review against chunked reading (BPT3C,
``nlp_lstm.nn.chunked``) and against today's cut to 400 tokens (head + tail).

    NLP_LSTM_DATA=../shared/data python -m benchmarks.documents [--threads 2] [--batches 6]
        [--chunks 64 128 256] [--max-tokens 12000]

The reviews: IMDB's training split through the data module of ``data=imdb`` (its word-level
tokenizer, 32k words, ``review`` normaliser), whole (``max_length`` 4096) or cut, in the
length-bucketed batches of the training loader (``batch_size`` 32, ``max_tokens`` budget).
The network: ``experiment=imdb_pretrained``'s (embedding 600, one bidirectional layer of 256,
``concat`` pooling). Every variant runs the same ``--batches`` batches (drawn once, from the
start of a shuffled epoch), after one warm-up batch, interleaved round by round; the table
gives the median seconds of a batch, real tokens per second and the ratio to one pass.

Legend: B batch, T time, C chunk length.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch
from hydra.utils import instantiate

from nlp_lstm.core.cli import bad_input_exits, compose_config
from nlp_lstm.sentiment.net import LSTMClassifierNet


def batches(max_length: int, truncation: str, count: int,
            max_tokens: int) -> tuple[list[dict], int]:
    """``count`` + 1 training batches of IMDB reviews, cut to ``max_length`` tokens, and the
    vocabulary's size."""
    cfg = compose_config("eval", [
        "task=sentiment", "data=imdb", "ckpt_path=unused", "data.tokenizer.normalize=review",
        "data.tokenizer.vocab_size=32000", f"data.loader.max_length={max_length}",
        f"data.loader.truncation={truncation}", "data.loader.batch_size=32",
        f"data.loader.max_tokens={max_tokens}"])  # the tokenizer cached: trained once
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    taken = []
    for batch in loader:
        taken.append(batch)
        if len(taken) == count + 1:
            break
    return taken, datamodule.tokenizer.vocab_size


def step(net: LSTMClassifierNet, batch: dict) -> None:
    """One forward+backward of the classifier on ``batch``."""
    logits = net(batch["tokens"], batch["lengths"])  # (B, 2)
    torch.nn.functional.cross_entropy(logits, batch["labels"]).backward()
    net.zero_grad(set_to_none=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.documents",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--max-tokens", type=int, default=12000)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with bad_input_exits():
        whole, vocab_size = batches(4096, "head", args.batches, args.max_tokens)
        cut, _ = batches(400, "head_tail", args.batches, args.max_tokens)
    torch.manual_seed(0)
    settings = {"hidden_size": 256, "num_layers": 1, "bidirectional": True}
    variants = {"one pass, whole reviews": (None, whole)}
    variants |= {f"chunks of {c}, whole reviews": (c, whole) for c in args.chunks}
    variants["one pass, cut to 400 (head+tail)"] = (None, cut)
    nets = {name: LSTMClassifierNet(vocab_size, 2, 0, 600, settings, "concat", 0.5, chunk)
            for name, (chunk, _) in variants.items()}
    for net in nets.values():
        net.load_state_dict(nets["one pass, whole reviews"].state_dict())
        net.train()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for name, (_, data) in variants.items():  # warm-up
        step(nets[name], data[0])
    for i in range(1, args.batches + 1):
        for name, (_, data) in variants.items():
            start = time.perf_counter()
            step(nets[name], data[i])
            times[name].append(time.perf_counter() - start)
    tokens = {name: sum(int(b["lengths"].sum()) for b in data[1:])
              for name, (_, data) in variants.items()}
    base = statistics.median(times["one pass, whole reviews"])
    print(f"{args.batches} training batches of IMDB reviews, {args.threads} threads, "
          f"max_tokens {args.max_tokens}; real tokens per batch: "
          f"whole {tokens['one pass, whole reviews'] / args.batches:,.0f}, "
          f"cut {tokens['one pass, cut to 400 (head+tail)'] / args.batches:,.0f}")
    print("| variant | s a batch (median) | real tokens/s | time vs one pass |")
    print("|---|---|---|---|")
    for name in variants:
        median = statistics.median(times[name])
        rate = tokens[name] / sum(times[name])
        print(f"| {name} | {median:.3f} | {rate:,.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
