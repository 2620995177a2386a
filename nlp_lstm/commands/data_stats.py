"""``nlp-lstm data-stats data=NAME [...]`` (also ``python -m tasks.data_stats``): corpus
statistics of a data config (``nlp_lstm.evaluation.stats``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nlp_lstm.core.cli import bad_input_exits, compose_config
from nlp_lstm.evaluation.stats import data_stats


def main(argv: Sequence[str] | None = None, prog: str = "python -m tasks.data_stats") -> None:
    overrides = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in overrides):
        print(__doc__)
        return
    with bad_input_exits():
        cfg = compose_config("data_stats", overrides, return_hydra_config=True)
        data_stats(cfg, name=cfg.hydra.runtime.choices.data)
