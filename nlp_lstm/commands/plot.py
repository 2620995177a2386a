"""``nlp-lstm plot RUN_DIR [--out FILE.png]`` (also ``python -m tasks.plot``): a run's training
curves (``nlp_lstm.plot``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nlp_lstm.cli import bad_input_exits
from nlp_lstm.plot import plot_run


def main(argv: Sequence[str] | None = None, prog: str = "python -m tasks.plot") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="Plot a run's training curves.")
    parser.add_argument("run_dir", help="a run directory written by train.py")
    parser.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png)")
    args = parser.parse_args(argv)
    with bad_input_exits():
        print(plot_run(args.run_dir, args.out))
