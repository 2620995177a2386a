"""``nlp-lstm backtest --ckpt PATH|--onnx DIR --csv FILE [--split test|val] [--stride N]
[--date-column NAME] [--batch-size N] [--out FILE]``: a rolling-origin backtest of a forecaster
over a split of a series file (``nlp_lstm.forecasting.backtest``).

Prints one JSON object: ``mse`` and ``mae`` on standardised values (as ``nlp-lstm eval``
scores; with ``--stride 1`` the same windows, so the same numbers), ``windows``, ``split``,
``stride``, ``horizon`` and the first and last origins. ``--out`` writes every origin's forecast
and truth, in original units, as CSV.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from nlp_lstm.core.cli import bad_input_exits
from nlp_lstm.drivers.predict import add_model_arguments, load_predictor, output_stream
from nlp_lstm.forecasting.backtest import BACKTEST_SPLITS, backtest
from nlp_lstm.forecasting.series import read_csv


def main(argv: Sequence[str] | None = None, prog: str = "nlp-lstm backtest") -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description="Rolling-origin backtest of a forecaster over a split of a "
                               "series: MSE and MAE as one JSON object.")
    add_model_arguments(parser, "forecasting", quantize=False)
    parser.add_argument("--csv", required=True, metavar="FILE",
                        help="the whole series, cut into splits as training cut it (ETTh*/ETTm* "
                             "files at the literature's borders, other files 70/10/20)")
    parser.add_argument("--date-column", default="date", metavar="NAME",
                        help="the file's date column (default: date)")
    parser.add_argument("--split", default="test", choices=BACKTEST_SPLITS,
                        help="the split whose rows are forecast (default: test)")
    parser.add_argument("--stride", type=int, default=1, metavar="N",
                        help="rows between origins (default 1: every window, as eval scores)")
    parser.add_argument("--batch-size", type=int, default=256, help="windows per predict call")
    parser.add_argument("--out", metavar="FILE",
                        help="write each origin's forecast and truth (original units) as CSV")
    args = parser.parse_args(argv)
    args.quantize = None  # a backtest scores the model as trained
    if args.stride < 1:
        parser.error(f"--stride must be positive, got {args.stride}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")

    with bad_input_exits():
        series = read_csv(args.csv, args.date_column)  # bad data fails before the model loads
        model = load_predictor(args, "forecasting")  # a ValueError for another task's model
        result = backtest(model, series, args.split, args.stride, args.batch_size)
        if args.out is not None:
            with output_stream(args.out) as out:
                result.write(out, args.date_column)
        print(json.dumps(result.scores()))
