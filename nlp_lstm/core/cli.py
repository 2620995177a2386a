"""Command-line plumbing shared by the entry points: config composition and clean failures."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
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
    from nlp_lstm.training.callbacks import DivergenceError

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


def check_encoder_choice(choices: Mapping[str, str | None]) -> None:
    """``encoder=gru|transformer`` only through ``conf/model_encoder/<model>_<encoder>.yaml``.
    That default is optional (models without an encoder, or with LSTM settings of their own,
    have none), so without this check a missing file would silently leave the LSTM in place."""
    model, encoder = choices.get("model"), choices.get("encoder")
    if encoder in (None, "lstm") or model is None:
        return
    if not (CONFIG_DIR / "model_encoder" / f"{model}_{encoder}.yaml").is_file():
        fits = sorted(f.stem.removeprefix(f"{model}_")
                      for f in (CONFIG_DIR / "model_encoder").glob(f"{model}_*.yaml"))
        raise ValueError(f"encoder={encoder} does not fit model={model}: there is no "
                         f"conf/model_encoder/{model}_{encoder}.yaml; this model takes encoder="
                         f"{' | '.join(['lstm', *[f for f in fits if f != 'lstm']])}")


def compose_config(
    config_name: str, overrides: Sequence[str], *, return_hydra_config: bool = False
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line overrides, without a Hydra run.
    With ``return_hydra_config``, ``cfg.hydra.runtime.choices`` names the chosen options."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides),
                       return_hydra_config=return_hydra_config)
