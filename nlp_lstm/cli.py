"""Command-line plumbing shared by the entry points: config composition and clean failures."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
BAD_INPUT_EXIT = 2


def debug() -> bool:
    """Show full tracebacks instead of one-line errors."""
    return bool(os.environ.get("NLP_LSTM_DEBUG") or os.environ.get("HYDRA_FULL_ERROR"))


def fail(message: str, code: int = BAD_INPUT_EXIT) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


@contextlib.contextmanager
def bad_input_exits() -> Iterator[None]:
    """Turn bad input (ValueError, config errors, missing files) into one line and exit code 2,
    and a diverged training run into one line and exit code 1. Set NLP_LSTM_DEBUG=1 for the
    traceback."""
    from nlp_lstm.callbacks import DivergenceError

    try:
        yield
    except (ValueError, HydraException, OmegaConfBaseException, FileNotFoundError) as e:
        if debug():
            raise
        fail(" ".join(str(e).split()) or type(e).__name__)
    except DivergenceError as e:
        if debug():
            raise
        fail(str(e), code=1)


def compose_config(
    config_name: str, overrides: Sequence[str], *, return_hydra_config: bool = False
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line overrides, without a Hydra run.
    With ``return_hydra_config``, ``cfg.hydra.runtime.choices`` names the chosen options."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides),
                       return_hydra_config=return_hydra_config)
