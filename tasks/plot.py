"""Plot a run's curves: ``python -m tasks.plot RUN_DIR [--out FILE.png]``."""

import argparse

from nlp_lstm.cli import bad_input_exits
from nlp_lstm.plot import plot_run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tasks.plot", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by train.py")
    parser.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png)")
    args = parser.parse_args()
    with bad_input_exits():
        print(plot_run(args.run_dir, args.out))
