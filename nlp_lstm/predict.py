"""Predict on free text: ``python -m tasks.<task>.predict --ckpt PATH [TEXT ...] [--input FILE]``
(or ``--onnx DIR``: an export of ``python -m tasks.export``, run by ``nlp_lstm.runtime``).

The task's module does the work (``TaskModule.predict_texts``, or the runtime's class of the
same name): one JSON object per input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp_lstm.cli import bad_input_exits, fail


def add_model_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    """``--ckpt PATH`` or ``--onnx DIR`` (exactly one, checked by ``load_predictor``), and
    ``--provider`` for ``--onnx``."""
    parser.add_argument("--ckpt", help=f"{task} checkpoint (.ckpt) written by train.py")
    parser.add_argument("--onnx", metavar="DIR",
                        help="instead of --ckpt: an export of python -m tasks.export, run with "
                             "onnxruntime (no torch)")
    parser.add_argument("--provider", default=None, metavar="NAME",
                        help="with --onnx: the onnxruntime execution provider, cpu (default), "
                             "cuda or tensorrt (onnxruntime-gpu)")
    parser.add_argument("--quantize", default=None, metavar="int8",
                        help="with --ckpt: int8 dynamic quantization of the network on CPU "
                             "(torch.ao); an export is quantized by tasks.export --quantize")


def load_predictor(args: argparse.Namespace, task: str) -> Any:
    """The model that ``--ckpt`` (int8 with ``--quantize``) or ``--onnx`` names: a
    ``TaskModule`` or its ``nlp_lstm.runtime`` counterpart, which offer the same calls. One
    ``error:`` line (exit 2) unless exactly one of the two is given."""
    if (args.ckpt is None) == (args.onnx is None):
        fail("give exactly one of --ckpt PATH (a checkpoint) and --onnx DIR (an export of "
             f"python -m tasks.export), got {'both' if args.ckpt else 'neither'}")
    if args.onnx is not None:
        if args.quantize is not None:
            fail(f"--quantize {args.quantize} applies to --ckpt; an export is quantized when "
                 "written: python -m tasks.export --quantize int8")
        try:
            from nlp_lstm import runtime
        except ImportError as e:
            fail(f"--onnx needs onnxruntime ({e}): pip install 'nlp-lstm[export]'")
        return runtime.load(args.onnx, providers=args.provider, task=task)
    if args.provider is not None:
        fail(f"--provider {args.provider} applies to --onnx DIR; a checkpoint runs on PyTorch")
    from nlp_lstm.checkpoint import load_model
    from nlp_lstm.quantize import QUANTIZATIONS, quantize_model

    if args.quantize is not None and args.quantize not in QUANTIZATIONS:
        fail(f"unknown --quantize {args.quantize!r}; expected one of {list(QUANTIZATIONS)}")
    model = load_model(args.ckpt, task=task)
    return model if args.quantize is None else quantize_model(model, args.quantize)


def read_inputs(texts: Sequence[str], input_file: str | None) -> list[tuple[str, str]]:
    """(where, text) pairs, ``where`` naming the input for error messages."""
    inputs = [(f"argument {i}", text) for i, text in enumerate(texts, 1)]
    if input_file is not None:
        name = "standard input" if input_file == "-" else input_file
        try:
            if input_file == "-":
                content = sys.stdin.read()
            else:
                content = Path(input_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            fail(f"input file not found: {input_file}")
        except UnicodeDecodeError as e:
            fail(f"{name} is not valid UTF-8 (byte {e.start})")
        except OSError as e:
            fail(f"cannot read {name}: {e.strerror}")
        lines = content.splitlines()
        if not any(line.strip() for line in lines):
            fail(f"{name} is empty: expected one text per line")
        inputs += [(f"line {i} of {name}", line) for i, line in enumerate(lines, 1)]
    return inputs


def main(argv: Sequence[str] | None = None, *, task: str) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m tasks.{task}.predict",
        description="Print one JSON object per input text: the model's prediction.",
    )
    add_model_arguments(parser, task)
    parser.add_argument("texts", nargs="*", help="input texts")
    parser.add_argument("--input", metavar="FILE", help="one text per line; '-' for stdin")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")

    with bad_input_exits():
        inputs = read_inputs(args.texts, args.input)
        if not inputs:
            fail("no input: give texts as arguments or a file with --input FILE (or - for stdin)")
        for where, text in inputs:
            if not text.strip():
                fail(f"{where} is empty or whitespace: expected text")
        model = load_predictor(args, task)
        truncated = 0
        texts = [text for _, text in inputs]
        for start in range(0, len(texts), args.batch_size):
            results, cut = model.predict_texts(texts[start : start + args.batch_size])
            truncated += cut
            for result in results:
                print(json.dumps(result, ensure_ascii=False))
        if truncated:
            print(f"note: {truncated} input(s) longer than {model.max_length} tokens were "
                  "truncated", file=sys.stderr)
