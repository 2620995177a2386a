"""``nlp-lstm predict --ckpt PATH|--onnx DIR [INPUT ...] [--input FILE|-] [--out FILE]``: one JSON
object per input, for a model of any task (read from the checkpoint or the export). Each input is
an argument or a line of the file, parsed by the task's ``parse_input`` (text for the text tasks).

``nlp-lstm predict --ckpt PATH|--onnx DIR --csv FILE [--date-column NAME] [--out FILE]``: the
inputs read from a table and the results written as one, by the task's ``table`` (forecasting:
the file's last rows in, the forecast rows out, at their timestamps in original units).

With ``--out``, the file is written whole or not at all; bad input writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nlp_lstm.core.cli import bad_input_exits, fail
from nlp_lstm.drivers.predict import (
    add_model_arguments,
    input_parser,
    load_predictor,
    output_stream,
    read_inputs,
    task_table,
)


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
        prog=prog, description="Print one JSON object per input: the model's prediction; or, "
                               "with --csv, read a table and write the predictions as one.")
    add_model_arguments(parser, task)
    parser.add_argument("texts", nargs="*", metavar="INPUT", help="inputs (texts)")
    parser.add_argument("--input", metavar="FILE", help="one input per line; '-' for stdin")
    parser.add_argument("--csv", metavar="FILE",
                        help="instead of inputs: a table the task reads (forecasting: a series "
                             "CSV; its last rows are the window)")
    parser.add_argument("--date-column", default="date", metavar="NAME",
                        help="with --csv: the table's date (key) column (default: date)")
    parser.add_argument("--out", metavar="FILE",
                        help="write the output to FILE instead of standard output")
    parser.add_argument("--batch-size", type=int, default=64, help="inputs per forward pass")
    parser.add_argument("--quantiles", type=float, nargs="+", metavar="Q",
                        help="the quantile levels to output, of those a quantile model was "
                             "trained for (e.g. model.quantiles=[0.1,0.5,0.9]); default: all")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")

    with bad_input_exits():
        if args.csv is not None:
            if args.texts or args.input is not None:
                fail("give inputs either as a table (--csv FILE) or as arguments / --input "
                     "FILE, not both")
            model = load_predictor(args, task)
            table = task_table(model.task)
            inputs = table.read(args.csv, model, args.date_column)
            keep = quantile_levels(model, args.quantiles)
            results, truncated = predict_all(model, inputs, args.batch_size, keep)
            with output_stream(args.out) as out:
                table.write(results, out, model, args.date_column)
        else:
            lines = read_inputs(args.texts, args.input)
            if not lines:
                fail("no input: give inputs as arguments, a file with --input FILE (or - for "
                     "stdin), or a table with --csv FILE")
            if task is None:  # read from the model, so parse once it is loaded
                model = load_predictor(args)
                inputs = parse_inputs(lines, input_parser(model.task))
            else:  # bad input fails before the model loads
                inputs = parse_inputs(lines, input_parser(task))
                model = load_predictor(args, task)
            keep = quantile_levels(model, args.quantiles)
            if args.out is None:  # stream: each batch printed as it comes
                truncated = 0
                for start in range(0, len(inputs), args.batch_size):
                    results, cut = model.predict(inputs[start : start + args.batch_size])
                    truncated += cut
                    for result in select_quantiles(results, keep):
                        print(json.dumps(result, ensure_ascii=False))
            else:  # every prediction first, so that bad input writes nothing
                results, truncated = predict_all(model, inputs, args.batch_size, keep)
                with output_stream(args.out) as out:
                    out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
        if truncated:
            print(f"note: {truncated} input(s) longer than {model.max_length} tokens were "
                  "truncated", file=sys.stderr)


def predict_all(model: Any, inputs: list[Any], batch_size: int,
                keep: list[str] | None = None) -> tuple[list[Any], int]:
    """Every input's result (with the quantiles ``keep``), in batches, and how many inputs
    were truncated."""
    results, truncated = [], 0
    for start in range(0, len(inputs), batch_size):
        batch, cut = model.predict(inputs[start : start + batch_size])
        results += select_quantiles(batch, keep)
        truncated += cut
    return results, truncated


def quantile_levels(model: Any, levels: list[float] | None) -> list[str] | None:
    """``--quantiles``: the result keys to keep, or None for all; one ``error:`` line for a
    model without quantiles or a level it was not trained for."""
    if levels is None:
        return None
    trained = getattr(model, "quantiles", None)
    if not trained:
        fail(f"--quantiles: this {model.task} model forecasts no quantiles; train one with "
             "model.quantiles=[0.1,0.5,0.9]")
    missing = [q for q in levels if q not in trained]
    if missing:
        fail(f"--quantiles {missing}: the model was trained for the levels {trained} only")
    return [str(q) for q in trained if q in levels]


def select_quantiles(results: list[dict[str, Any]], keep: list[str] | None) -> list[Any]:
    if keep is None:
        return results
    return [r | {"quantiles": {q: r["quantiles"][q] for q in keep}} for r in results]
