"""Translate text with a checkpoint or an export (also ``python -m tasks.translation.translate``):

    nlp-lstm translate --ckpt PATH|--onnx DIR [TEXT ...] [--input FILE|-] [--beam-size N]
        [--n-best K] [--batch-size N] [--max-length-ratio A] [--attention-png DIR]

One JSON object per input line, in order: ``{"source", "translation", "score"}`` plus
``"nbest"`` (the K best ``{"translation", "score"}``) with ``--n-best`` > 1. An empty input line
gives an empty translation, so the output stays line-aligned with the input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlp_lstm.core.cli import bad_input_exits, fail
from nlp_lstm.drivers.predict import add_model_arguments, load_predictor, read_inputs


def attention_png(path: Path, source: Sequence[str], target: Sequence[str], weights: Any) -> None:
    """A heat map of attention weights (T, S): source tokens on x, target tokens on y."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * len(source), 1.0 + 0.4 * len(target)))
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), [s.strip() or "_" for s in source], rotation=60,
                  ha="right")
    ax.set_yticks(range(len(target)), [t.strip() or "_" for t in target])
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None,
         prog: str = "python -m tasks.translation.translate") -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Translate texts: one JSON object per input line, in order.")
    add_model_arguments(parser, "translation")
    parser.add_argument("texts", nargs="*", help="sentences to translate")
    parser.add_argument("--input", metavar="FILE", help="one sentence per line; '-' for stdin")
    parser.add_argument("--beam-size", type=int, default=None,
                        help="beam size (1: greedy); default: the checkpoint's")
    parser.add_argument("--n-best", type=int, default=1, help="translations per sentence")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    parser.add_argument("--max-length-ratio", type=float, default=None, metavar="A",
                        help="at most A * source length + offset target tokens")
    parser.add_argument("--attention-png", metavar="DIR",
                        help="write one attention heat map per sentence into DIR")
    args = parser.parse_args(argv)

    with bad_input_exits():
        if args.batch_size < 1:
            fail(f"--batch-size must be positive, got {args.batch_size}")
        inputs = read_inputs(args.texts, args.input)
        if not inputs:
            fail("no input: give sentences as arguments or a file with --input FILE (or - for "
                 "stdin)")
        for i, text in enumerate(args.texts, 1):
            if not text.strip():
                fail(f"argument {i} is empty or whitespace: expected a sentence")
        model = load_predictor(args, "translation")
        texts = [text for _, text in inputs]
        todo = [i for i, text in enumerate(texts) if text.strip()]
        truncated = 0
        results: dict[int, list[dict[str, Any]]] = {}
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start : start + args.batch_size]
            translated, cut = model.translate([texts[i] for i in batch], beam_size=args.beam_size,
                                              n_best=args.n_best,
                                              max_length_ratio=args.max_length_ratio)
            truncated += cut
            results.update(zip(batch, translated, strict=True))
        png_dir = Path(args.attention_png) if args.attention_png else None
        if png_dir is not None:
            png_dir.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            hyps = results.get(i)
            row: dict[str, Any] = {"source": text, "translation": hyps[0]["translation"] if hyps
                                   else "", "score": hyps[0]["score"] if hyps else 0.0}
            if args.n_best > 1:
                row["nbest"] = [{"translation": h["translation"], "score": h["score"]}
                                for h in hyps or []]
            print(json.dumps(row, ensure_ascii=False), flush=True)
            if png_dir is not None and hyps and hyps[0]["attention"] is not None:
                best = hyps[0]
                attention_png(png_dir / f"{i + 1:04d}.png", best["source_tokens"],
                              best["tokens"], np.asarray(best["attention"]))
        if truncated:
            print(f"note: {truncated} source(s) longer than {model.max_length} tokens were cut "
                  "to that length", file=sys.stderr)
