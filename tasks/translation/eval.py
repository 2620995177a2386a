"""Evaluate a translation checkpoint (sacreBLEU BLEU and chrF, loss, perplexity).

    python -m tasks.translation.eval ckpt_path=PATH [data=multi30k] [split=val] [beam_size=5]
        [output=FILE]
"""

import sys

from nlp_lstm.cli import bad_input_exits, compose_config
from nlp_lstm.evaluate import evaluate

if __name__ == "__main__":
    with bad_input_exits():
        evaluate(compose_config("eval", ["task=translation", *sys.argv[1:]]))
