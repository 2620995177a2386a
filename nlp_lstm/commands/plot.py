"""``nlp-lstm plot RUN_DIR [--out FILE.png]`` (also ``python -m tasks.plot``): a run's training
curves (``nlp_lstm.evaluation.plot``); ``nlp-lstm plot RUN_DIR RUN_DIR... --out FILE.png``: several
runs'
loss and gradient norm step by step, side by side; ``nlp-lstm plot --ckpt PATH|--onnx DIR
--csv FILE``: a forecasting model's forecasts against the truth (``nlp_lstm.forecasting.plot``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nlp_lstm.core.cli import bad_input_exits, fail
from nlp_lstm.evaluation.plot import plot_curves, plot_run


def main(argv: Sequence[str] | None = None, prog: str = "python -m tasks.plot") -> None:
    parser = argparse.ArgumentParser(
        prog=prog, description="Plot a run's training curves, or a forecasting model's "
                               "forecasts against the truth of a series file.")
    parser.add_argument("run_dir", nargs="*", help="a run directory written by train.py; "
                        "several: their step-by-step curves compared (needs --out)")
    parser.add_argument("--labels", nargs="+", help="one name per run directory")
    parser.add_argument("--smooth", type=int, default=25, help="steps per running mean")
    parser.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png; "
                                      "forecasts.png for --ckpt/--onnx)")
    forecast = parser.add_argument_group("forecasts (instead of RUN_DIR)")
    forecast.add_argument("--ckpt", help="a forecasting checkpoint")
    forecast.add_argument("--onnx", metavar="DIR", help="or a forecasting export")
    forecast.add_argument("--csv", help="the series file (.csv or .csv.gz) to forecast")
    forecast.add_argument("--date-column", default="date")
    forecast.add_argument("--channel", help="the target column to draw (default: the last)")
    forecast.add_argument("--split", default="test", choices=("train", "val", "test"))
    forecast.add_argument("--origins", type=int, default=3, help="forecasts drawn")
    args = parser.parse_args(argv)
    with bad_input_exits():
        if args.ckpt is None and args.onnx is None:
            if not args.run_dir:
                fail("give a RUN_DIR, or --ckpt/--onnx with --csv to plot forecasts")
            if len(args.run_dir) == 1 and not args.labels:
                print(plot_run(args.run_dir[0], args.out))
                return
            if args.out is None:
                fail("comparing runs needs --out FILE.png")
            print(plot_curves(args.run_dir, args.out, smooth=args.smooth, labels=args.labels))
            return
        if args.csv is None or args.run_dir:
            fail("forecasts need --csv FILE and no RUN_DIR")
        if args.origins < 1:
            fail(f"--origins must be positive, got {args.origins}")
        from nlp_lstm.drivers.predict import load_predictor
        from nlp_lstm.forecasting.plot import plot_forecasts
        from nlp_lstm.forecasting.series import read_csv

        args.quantize = args.provider = None  # load_predictor's other options
        model = load_predictor(args)
        if model.task != "forecasting":
            fail(f"--ckpt/--onnx must be a forecasting model, got a {model.task} model")
        series = read_csv(args.csv, args.date_column)
        print(plot_forecasts(model, series, args.out or "forecasts.png", args.channel,
                             args.split, args.origins))
