"""Evaluate a language-model checkpoint (loss in nats per token, perplexity, bits per character,
and the probe accuracy where the data defines one).

    python -m tasks.generation.eval ckpt_path=PATH [data=tinyshakespeare] [split=val]
        [output=FILE]
"""

import sys

from nlp_lstm.cli import bad_input_exits, compose_config
from nlp_lstm.evaluate import evaluate

if __name__ == "__main__":
    with bad_input_exits():
        evaluate(compose_config("eval", ["task=generation", *sys.argv[1:]]))
