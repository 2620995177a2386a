"""Every command, in one place: ``nlp-lstm <command> [...]`` (the console script of
``pyproject.toml``).

One script with subcommands rather than one script per command: a single name to remember and
to put on the PATH, ``nlp-lstm --help`` lists everything, and each command module stays a plain
``main(argv)``. ``python train.py ...`` and ``python -m tasks.<task>.<command>`` call the same
functions.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: command -> (module under nlp_lstm.commands, one line of help). Train and eval take Hydra
#: overrides (``key=value``); the others, options.
COMMANDS = {
    "train": ("train", "train a model: nlp-lstm train task=... data=... model=... (Hydra)"),
    "eval": ("eval", "evaluate a checkpoint on a split: nlp-lstm eval ckpt_path=PATH [split=...]"),
    "predict": ("predict", "predict with a checkpoint or an export: one JSON line per input"),
    "backtest": ("backtest", "rolling-origin backtest of a forecaster over a series' test rows"),
    "translate": ("translate", "translate with a translation model (beam, n-best, attention)"),
    "generate": ("generate", "continue a prompt with a language model (sampling, streaming)"),
    "export": ("export", "export a checkpoint to ONNX for the torch-free runtime"),
    "serve": ("serve", "serve a checkpoint or an export over HTTP"),
    "data-stats": ("data_stats", "corpus statistics of a data config"),
    "plot": ("plot", "plot a run's training curves"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return ("usage: nlp-lstm COMMAND [ARGS...]\n\ncommands:\n" + "\n".join(lines)
            + "\n\n'nlp-lstm COMMAND --help' describes each.")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; expected one of {list(COMMANDS)}\n\n{usage()}",
              file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    module.main(rest, prog=f"nlp-lstm {name}")
