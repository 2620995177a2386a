"""Shared fixtures: config composition and one tiny trained checkpoint for the whole session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nlp_lstm.cli import CONFIG_DIR

ROOT = Path(__file__).resolve().parent.parent

# Small enough to train in seconds, large enough that the model must learn something.
TINY = [
    "data.source.num_examples=600",
    "data.batch_size=32",
    "model.embedding_dim=32",
    "model.hidden_size=32",
    "model.scheduler.warmup_steps=5",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_train(output_dir: Path, overrides: list[str] = ()) -> DictConfig:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}",
                                           f"paths.cache_dir={output_dir}/cache", *overrides])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding a tiny sentiment model trained through the real train()."""
    from nlp_lstm.train import train

    out = tmp_path_factory.mktemp("run")
    train(compose_train(out, TINY))
    return out


@pytest.fixture(scope="session")
def checkpoint(trained_run: Path) -> Path:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    return Path(metrics["checkpoint"])
