"""How a data module turns examples into batches: one options object that every task's data
module takes (``loader=``), and one config node (``data.loader``) that builds it.

Torch-free, so that configs and checks can use it without loading torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from nlp_lstm.data.guard import POLICIES

#: What a malformed line of a user file does: fail, or be skipped and counted.
ON_ERROR = ("raise", "skip")


def check_batch_limits(batch_size: int | None, max_tokens: int | None, prefix: str = "") -> None:
    """A ValueError unless at least one limit is given and each given one is positive;
    ``prefix`` names where they are set (e.g. ``"data.loader."``)."""
    if batch_size is None and max_tokens is None:
        raise ValueError(f"give {prefix}batch_size, {prefix}max_tokens or both")
    for name, value in (("batch_size", batch_size), ("max_tokens", max_tokens)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{prefix}{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class LoaderOptions:
    """The options of a data module's batches (config: ``data.loader``).

    Args:
        batch_size: the most examples in a batch (None: only ``max_tokens`` limits it); the
            stream mode of generation: the number of parallel streams B.
        max_tokens: the most padded positions (examples x longest) in a batch.
        max_length: longer inputs are truncated, and counted.
        truncation: which tokens an input over ``max_length`` keeps (``LengthGuard``):
            ``head`` the first ones; ``head_tail`` the first quarter and the last three
            quarters of ``max_length`` (long reviews state their verdict at the end).
        on_error: ``raise`` on a malformed line of a user file, or ``skip`` it and count it.
        num_workers: DataLoader workers.
        seed: seeds the batch order, together with the epoch.
        train_examples: train on a fixed random subset of this many training examples (drawn
            with seed 0 whatever ``seed`` is, so runs of several seeds share it: learning
            curves, few-label fine-tuning); None: all of them.
    """

    batch_size: int | None = 64
    max_tokens: int | None = None
    max_length: int = 256
    truncation: str = "head"
    on_error: str = "raise"
    num_workers: int = 0
    seed: int = 0
    train_examples: int | None = None

    def __post_init__(self) -> None:
        # Checked here, since the sampler that uses them is built long after the configuration.
        check_batch_limits(self.batch_size, self.max_tokens, prefix="data.loader.")
        if not isinstance(self.max_length, int) or self.max_length < 1:
            raise ValueError(f"data.loader.max_length must be a positive integer, got "
                             f"{self.max_length!r}")
        if self.truncation not in POLICIES:
            raise ValueError(f"data.loader.truncation must be one of {POLICIES}, got "
                             f"{self.truncation!r}")
        if self.on_error not in ON_ERROR:
            raise ValueError(f"data.loader.on_error must be one of {ON_ERROR}, got "
                             f"{self.on_error!r}")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"data.loader.num_workers must be an integer >= 0, got "
                             f"{self.num_workers!r}")
        if self.train_examples is not None and (not isinstance(self.train_examples, int)
                                                or self.train_examples < 1):
            raise ValueError(f"data.loader.train_examples must be a positive integer or null, "
                             f"got {self.train_examples!r}")

    @classmethod
    def of(cls, options: LoaderOptions | Mapping[str, Any] | None,
           default: LoaderOptions | None = None) -> LoaderOptions:
        """``options`` as a ``LoaderOptions``: itself, built from a mapping (a config node
        without ``_target_``), or ``default`` (else the class defaults) when None."""
        if options is None:
            return default if default is not None else cls()
        if isinstance(options, cls):
            return options
        if isinstance(options, Mapping):
            unknown = sorted(set(options) - set(OPTION_NAMES) - {"_target_"})
            if unknown:
                raise ValueError(f"unknown data.loader option(s) {unknown}; expected some of "
                                 f"{sorted(OPTION_NAMES)}")
            return cls(**{k: v for k, v in options.items() if k != "_target_"})
        raise TypeError(f"loader must be LoaderOptions, a mapping or None, got "
                        f"{type(options).__name__}")



#: The fields of ``LoaderOptions``: the keys of a ``data.loader`` node.
OPTION_NAMES = tuple(f.name for f in fields(LoaderOptions))

def nest_loader_options(data: dict[str, Any]) -> dict[str, Any]:
    """A data config as nlp-lstm 0.3 writes it: loader options that an earlier config set at
    the top (``data.batch_size``, as checkpoints of 0.3.0's first builds recorded them) moved
    into its ``loader`` node. Returns a new dict; one already nested comes back equal."""
    moved = {k: v for k, v in data.items() if k in OPTION_NAMES}
    if not moved:
        return dict(data)
    upgraded = {k: v for k, v in data.items() if k not in OPTION_NAMES}
    loader = dict(upgraded.get("loader") or {"_target_": "nlp_lstm.data.LoaderOptions"})
    upgraded["loader"] = {**moved, **loader}  # a value already in the node wins
    return upgraded
