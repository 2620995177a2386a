"""Train a model: ``python train.py task=sentiment data=... model=... trainer=...``."""

import hydra
from omegaconf import DictConfig

from nlp_lstm.cli import bad_input_exits
from nlp_lstm.train import train


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    with bad_input_exits():
        return train(cfg)


if __name__ == "__main__":
    main()
