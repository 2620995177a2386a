"""``nlp-lstm predict --ckpt PATH|--onnx DIR [INPUT ...] [--input FILE|-]``: one JSON object per
input, for a model of any task (read from the checkpoint or the export). Each input is an
argument or a line of the file, parsed by the task's ``parse_input`` (text for the text tasks).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nlp_lstm.cli import bad_input_exits, fail
from nlp_lstm.predict import add_model_arguments, input_parser, load_predictor, read_inputs


def parse_inputs(lines: list[tuple[str, str]], parse: Callable[[str], Any]) -> list[Any]:
    """Each line parsed; one ``error:`` line naming the first that fails."""
    inputs = []
    for where, line in lines:
        try:
            inputs.append(parse(line))
        except ValueError as e:
            fail(f"{where} {e}")
    return inputs


def main(argv: Sequence[str] | None = None, prog: str = "nlp-lstm predict",
         task: str | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description="Print one JSON object per input: the model's prediction.")
    add_model_arguments(parser, task)
    parser.add_argument("texts", nargs="*", metavar="INPUT", help="inputs (texts)")
    parser.add_argument("--input", metavar="FILE", help="one input per line; '-' for stdin")
    parser.add_argument("--batch-size", type=int, default=64, help="inputs per forward pass")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")

    with bad_input_exits():
        lines = read_inputs(args.texts, args.input)
        if not lines:
            fail("no input: give inputs as arguments or a file with --input FILE (or - for "
                 "stdin)")
        if task is None:  # read from the model, so parse once it is loaded
            model = load_predictor(args)
            inputs = parse_inputs(lines, input_parser(model.task))
        else:  # bad input fails before the model loads
            inputs = parse_inputs(lines, input_parser(task))
            model = load_predictor(args, task)
        truncated = 0
        for start in range(0, len(inputs), args.batch_size):
            results, cut = model.predict(inputs[start : start + args.batch_size])
            truncated += cut
            for result in results:
                print(json.dumps(result, ensure_ascii=False))
        if truncated:
            print(f"note: {truncated} input(s) longer than {model.max_length} tokens were "
                  "truncated", file=sys.stderr)
