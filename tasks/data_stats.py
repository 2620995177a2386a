"""Print corpus statistics: ``python -m tasks.data_stats data=NAME [...]``."""

import sys

from nlp_lstm.cli import bad_input_exits, compose_config
from nlp_lstm.stats import data_stats

if __name__ == "__main__":
    with bad_input_exits():
        cfg = compose_config("data_stats", sys.argv[1:], return_hydra_config=True)
        data_stats(cfg, name=cfg.hydra.runtime.choices.data)
