"""A Lightning callback that checks, before language-model pretraining starts, how much of
some evaluation sets the training text contains (``nlp_lstm.training.contamination`` says why).

In a Hydra config (the nested ``_target_`` nodes are instantiated before the callback gets
them)::

    callbacks:
      contamination:
        _target_: nlp_lstm.training.contamination_callback.ContaminationCheck
        against:
          sst2_dev:
            source: {_target_: nlp_lstm.sentiment.data.SST2}
            split: val
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from nlp_lstm.training.contamination import Contamination, check

WARNING = "warning: contamination:"


def _text(example: Any) -> str:
    """A document (str) as it is; a ``(text, label)`` pair as its text."""
    if isinstance(example, tuple | list):
        return str(example[0])
    return str(example)


class ContaminationCheck(pl.Callback):
    """At the start of fit, on global rank 0 only: checks the training split of the trainer's
    data module (the pretraining text) against each evaluation set with
    ``nlp_lstm.training.contamination.check``, prints a summary line per set, warns about each set
    whose
    share of hit examples exceeds ``warn_above``, and writes the reports as
    ``contamination.json`` into ``trainer.log_dir`` (or ``trainer.default_root_dir``).

    The check only reports: an evaluation set that cannot be read (missing files) is skipped
    with a warning, and nothing here stops training.

    Args:
        against: evaluation set name -> ``{"source": <a source object>, "split": "val"}``; the
            source's ``load(split, root, on_error)`` gives strings or ``(text, label)`` pairs
            and reads under the data module's ``root``. ``split`` defaults to ``val``.
        n: words per n-gram.
        threshold: the share of an example's n-grams seen that makes it contained.
        warn_above: warn when hit examples / examples exceeds this share; with 0.0 (the
            default) a single hit example warns.
    """

    def __init__(
        self,
        against: Mapping[str, Mapping[str, Any]],
        n: int = 8,
        threshold: float = 0.5,
        warn_above: float = 0.0,
    ) -> None:
        if not 0.0 <= warn_above <= 1.0:
            raise ValueError(f"warn_above must be in [0, 1], got {warn_above!r}")
        for name, entry in against.items():
            if "source" not in entry:
                raise ValueError(f"contamination set {name!r} needs a 'source'; got "
                                 f"{sorted(entry)}")
        check([], {}, n, threshold)  # validates n and threshold now, not at fit time
        self.against = against
        self.n, self.threshold, self.warn_above = n, threshold, warn_above
        self.reports: list[Contamination] = []

    def _evaluation_sets(self, root: Path | None) -> dict[str, list[str]]:
        """The texts of each readable evaluation set; the others are skipped with a warning."""
        sets: dict[str, list[str]] = {}
        for name, entry in self.against.items():
            try:
                examples, _ = entry["source"].load(entry.get("split", "val"), root,
                                                   on_error="raise")
                sets[name] = [_text(example) for example in examples]
            except Exception as error:  # missing files, DataError, ...: report, never crash
                print(f"{WARNING} skipped {name}: {error}", flush=True)
        return sets

    def run(self, pretrain: Sequence[Any], root: Path | None) -> list[Contamination]:
        """Checks ``pretrain`` (documents or ``(text, label)`` pairs) against the evaluation
        sets, prints the summaries and warnings, and keeps the reports in ``self.reports``."""
        sets = self._evaluation_sets(root)
        self.reports = check((_text(doc) for doc in pretrain), sets, self.n, self.threshold)
        for report in self.reports:
            print(f"contamination: {report.summary()}", flush=True)
            if report.hit_share > self.warn_above:
                print(f"{WARNING} {report.name}: {report.hit_share:.1%} of its examples share "
                      f"a {self.n}-gram with the pretraining text ({report.contained_share:.1%}"
                      f" contained >= {self.threshold:.0%}); its scores after fine-tuning may "
                      "be inflated", flush=True)
        return self.reports

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # log_dir broadcasts from rank 0 (a collective): every rank must ask, not only rank 0.
        folder = trainer.log_dir or trainer.default_root_dir
        if not trainer.is_global_zero:
            return
        datamodule = getattr(trainer, "datamodule", None)
        try:
            if datamodule is None:
                raise ValueError("the trainer has no data module (fit(datamodule=...))")
            pretrain = datamodule._examples("train")
        except Exception as error:
            print(f"{WARNING} skipped: no pretraining text: {error}", flush=True)
            return
        self.run(pretrain, getattr(datamodule, "root", None))
        try:
            _write_json(Path(folder) / "contamination.json",
                        [report.to_dict() for report in self.reports])
        except OSError as error:
            print(f"{WARNING} could not write contamination.json: {error}", flush=True)


def _write_json(path: Path, data: Any) -> None:
    """Writes ``data`` as JSON atomically: a temporary file in the same folder, then a rename,
    so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
