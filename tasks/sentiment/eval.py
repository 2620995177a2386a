"""Evaluate a sentiment checkpoint.

    python -m tasks.sentiment.eval ckpt_path=PATH [data=...] [split=test] [output=FILE]
"""

import sys

from nlp_lstm.cli import bad_input_exits, compose_config
from nlp_lstm.evaluate import evaluate

if __name__ == "__main__":
    with bad_input_exits():
        evaluate(compose_config("eval", ["task=sentiment", *sys.argv[1:]]))
