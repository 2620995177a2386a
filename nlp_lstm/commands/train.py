"""``nlp-lstm train [overrides]`` (also ``python train.py``): compose the training config and
train (``nlp_lstm.drivers.train``). Hydra runs it: overrides, ``-m`` sweeps, ``--cfg job``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from nlp_lstm.core.cli import CONFIG_DIR, bad_input_exits
from nlp_lstm.drivers.train import train
from nlp_lstm.training.multinode import launched_overrides


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def run(cfg: DictConfig) -> float | None:
    with bad_input_exits():
        return train(cfg)


def main(argv: Sequence[str] | None = None, prog: str = "python train.py") -> None:
    if argv is not None:  # Hydra reads sys.argv
        sys.argv = [prog, *argv]
    with bad_input_exits():  # under torchrun or srun: one run directory for every process
        sys.argv += launched_overrides(sys.argv[1:])
    run()
