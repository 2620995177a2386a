"""What every task's LightningModule shares: optimization from partial factories, checkpoint
metadata, the checkpoint format check, and the prediction contract.

A task module wraps a plain ``nn.Module`` network (tensor-only ``forward``), owns the loss,
metrics, optimizer and tokenizer(s), takes plain hyperparameters and calls
``save_hyperparameters()``, so ``load_from_checkpoint(path)`` needs nothing else.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch

from nlp_lstm import __version__
from nlp_lstm.training.finetune import discriminative_groups

OptimizerFactory = Callable[..., torch.optim.Optimizer]

#: Warnings Lightning's loops raise that say nothing to our users: Lightning 2.6 trips over a
#: deprecation in torch's pytree on every batch it fetches, and asks for DataLoader workers that
#: would only slow our in-memory batches.
LOOP_NOISE = (r".*isinstance\(treespec, LeafSpec\)", r".*does not have many workers.*")


@contextlib.contextmanager
def quiet_loops() -> Iterator[None]:
    """Run Lightning's fit, validate or test loops without ``LOOP_NOISE``."""
    with warnings.catch_warnings():
        for message in LOOP_NOISE:
            warnings.filterwarnings("ignore", message=message)
        yield
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]

#: The layout of checkpoints this version writes and reads. Format 1 (nlp-lstm 0.1) stored the
#: networks' layers on the module itself and their encoder settings flat.
CHECKPOINT_FORMAT = 2
PROVISIONAL_STEPS = 1_000_000  # the schedule's horizon until a time budget sets it


def check_format(meta: dict[str, Any], where: str) -> None:
    """A ValueError unless ``meta`` (a checkpoint's ``nlp_lstm`` entry) has our format."""
    found = meta.get("format", 1)
    if found != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{where} is in checkpoint format {found} (written by nlp-lstm "
            f"{meta.get('version', '?')}); this version ({__version__}) reads format "
            f"{CHECKPOINT_FORMAT}: retrain the model, or use the nlp-lstm version that wrote it")


class TaskModule(pl.LightningModule):
    """Base of every task's LightningModule.

    Subclasses set ``task`` (the registry name written into checkpoints), build their network
    in ``__init__`` and implement the Lightning steps and ``predict``.

    Args:
        optimizer: a partial optimizer (``_partial_: true`` in YAML); needed to train only.
        scheduler: a partial ``WarmupCosineLR`` (or any scheduler taking ``total_steps``),
            stepped every optimizer step.
    """

    task: ClassVar[str] = ""
    #: Discriminative learning rates (``finetune.discriminative_groups`` of ``self.net``): each
    #: layer group this many times slower than the one above it; None: one rate for all.
    layer_lr_decay: float | None = None
    #: Modules of ``self.net`` kept fixed (``freeze``): feature extraction, ELMo-style.
    frozen: tuple[str, ...] = ()

    @property
    def final_eval_cost(self) -> float:
        """The final evaluation's cost per batch over validation's during fitting (a time
        budget reserves it: ``nlp_lstm.training.budget``); the same pass unless a task says
        otherwise."""
        return 1.0

    def __init__(
        self, optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        #: Results of the last test run that are not scalars (e.g. a confusion matrix), by name;
        #: the train and eval commands report them as ``<split>/<name>``.
        self.results: dict[str, Any] = {}
        #: Text outputs of the last test run, one per example in data order (e.g. translations);
        #: the eval command writes them next to the metrics, one per line.
        self.outputs: list[str] = []
        #: Where the weights started from (``nlp_lstm.training.transfer``: the source checkpoints'
        #: sha256, the modules, the schedule); saved in and restored from checkpoints.
        self.provenance: dict[str, Any] = {}
        #: The data the model was trained on: ``{"choice": the data= option or None, "config":
        #: the data node, interpolations unresolved so that ${paths.data_dir} is the evaluating
        #: machine's}``; set by the train command, saved in checkpoints, used by ``nlp-lstm eval``
        #: when no data= is given.
        self.data_config: dict[str, Any] | None = None

    def freeze(self, modules: Sequence[str]) -> None:
        """Keep these top-level modules of ``self.net`` fixed: no gradients, and in eval mode
        (no dropout inside them) even while the rest trains."""
        children = dict(self.net.named_children())
        unknown = [m for m in modules if m not in children]
        if unknown:
            raise ValueError(f"freeze: unknown modules {unknown}; this network has "
                             f"{list(children)}")
        self.frozen = tuple(modules)
        for name in self.frozen:
            children[name].requires_grad_(False)

    def train(self, mode: bool = True) -> TaskModule:
        super().train(mode)
        for name in self.frozen:  # fixed features: dropout off inside them
            getattr(self.net, name).eval()
        return self

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("this model was built without an optimizer; pass `optimizer` to train")
        optimizer = self.optimizer_factory(self.parameter_groups())
        if self.scheduler_factory is None:
            return optimizer
        total = self.trainer.estimated_stepping_batches
        # No step or epoch limit (a time budget): a provisional horizon, flat after warmup,
        # until nlp_lstm.training.budget has measured the step time and sets the real one.
        total = PROVISIONAL_STEPS if math.isinf(total) else int(total)
        scheduler = self.scheduler_factory(optimizer, total_steps=total)
        schedule = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def parameter_groups(self) -> Any:
        """What the optimizer trains: every parameter at the optimizer's rate, or with
        ``layer_lr_decay`` the network's layer groups, the top one at that rate; frozen
        modules' parameters (``freeze``) never."""
        # Only ``freeze``'s modules: gradual unfreezing flips requires_grad later on.
        fixed = {id(p) for name in self.frozen for p in getattr(self.net, name).parameters()}
        if not self.layer_lr_decay:
            return [p for p in self.parameters() if id(p) not in fixed]
        lr = getattr(self.optimizer_factory, "keywords", {}).get("lr")
        if lr is None:
            raise ValueError("layer_lr_decay needs the optimizer's lr (a partial with lr=...)")
        groups = discriminative_groups(self.net, lr, self.layer_lr_decay)
        groups = [{**{k: v for k, v in g.items() if k != "names"},
                   "params": [p for p in g["params"] if id(p) not in fixed]} for g in groups]
        return [g for g in groups if g["params"]]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["nlp_lstm"] = {"task": self.task, "model": type(self).__name__,
                                  "version": __version__, "format": CHECKPOINT_FORMAT}
        if self.provenance:
            checkpoint["nlp_lstm"]["provenance"] = self.provenance
        if self.data_config:
            checkpoint["nlp_lstm"]["data"] = self.data_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this before loading the weights, also when resuming a run.
        meta = checkpoint.get("nlp_lstm") or {}
        check_format(meta, "the checkpoint")
        self.provenance = dict(meta.get("provenance") or {})
        self.data_config = meta.get("data")

    def predict(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """One JSON-serializable result per text, and how many texts the length guard cut."""
        raise NotImplementedError
