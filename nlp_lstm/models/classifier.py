"""What every text classifier shares: loss, metrics, optimization and checkpoint metadata.

Subclasses build their network in ``__init__`` and implement ``forward(tokens, lengths)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from nlp_lstm import __version__
from nlp_lstm.data.batching import LengthGuard, pad_sequences
from nlp_lstm.data.tokenizer import Tokenizer

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class TextClassifier(pl.LightningModule):
    """Base of the sentiment models.

    Args:
        tokenizer: the trained tokenizer as JSON; it travels inside the checkpoint.
        labels: label names, index i is class i.
        max_length: inputs are truncated to this many tokens at prediction time.
        class_weights: optional per-class weights of the cross-entropy.
        optimizer: a partial optimizer (``_partial_: true`` in YAML); needed to train only.
        scheduler: a partial ``WarmupCosineLR`` (or any scheduler taking ``total_steps``),
            stepped every optimizer step.
    """

    task = "sentiment"

    def __init__(
        self,
        tokenizer: str,
        labels: Sequence[str],
        max_length: int = 256,
        class_weights: Sequence[float] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        labels = list(labels)
        if len(labels) < 2:
            raise ValueError(f"a classifier needs at least 2 labels, got {labels}")
        if class_weights is not None and len(class_weights) != len(labels):
            raise ValueError(f"class_weights has {len(class_weights)} entries, "
                             f"expected one per label ({len(labels)})")
        self.tokenizer = Tokenizer.from_json(tokenizer)
        self.labels = labels
        self.max_length = max_length
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        weights = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        n = len(labels)
        # torchmetrics objects sync their states across DDP ranks, so metrics (the loss too,
        # as a weighted mean) are exactly those of a single process on the same data.
        self.metrics = torch.nn.ModuleDict({
            f"{stage}_{name}": metric
            for stage in ("val", "test")
            for name, metric in (("loss", MeanMetric()),
                                 ("acc", MulticlassAccuracy(n, average="micro")),
                                 ("f1", MulticlassF1Score(n, average="macro")))
        })
        self.test_confusion = MulticlassConfusionMatrix(n)
        self.confusion: list[list[int]] | None = None

    # -------------------------------------------------------------- training
    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, weight=self.class_weights)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["tokens"], batch["lengths"])
        loss = self.loss(logits, batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        logits = self(batch["tokens"], batch["lengths"])
        labels = batch["labels"]
        self.metrics[f"{stage}_loss"].update(self.loss(logits, labels), weight=len(labels))
        for name in ("acc", "f1"):
            self.metrics[f"{stage}_{name}"].update(logits, labels)
        for name in ("loss", "acc", "f1"):
            self.log(f"{stage}/{name}", self.metrics[f"{stage}_{name}"], prog_bar=name == "acc",
                     batch_size=len(labels))
        if stage == "test":
            self.test_confusion.update(logits, labels)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        # Rows are true labels, columns predictions; read by the train and eval commands.
        self.confusion = self.test_confusion.compute().tolist()
        self.test_confusion.reset()

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("this model was built without an optimizer; pass `optimizer` to train")
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total)
        schedule = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    # ------------------------------------------------------------ checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        cls = type(self)
        checkpoint["nlp_lstm"] = {"task": self.task, "model": cls.__name__, "version": __version__}

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_texts(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """Label raw texts. Returns one ``{"text", "label", "probs"}`` per text and how many
        texts the length guard truncated."""
        guard = LengthGuard(self.max_length)
        ids = [guard(self.tokenizer.encode(t) or [self.tokenizer.unk_id]) for t in texts]
        tokens, lengths = pad_sequences(ids, self.tokenizer.pad_id)  # (B, T), (B,)
        self.eval()
        probs = self(tokens.to(self.device), lengths).softmax(-1).cpu()  # (B, C)
        results = [
            {"text": text, "label": self.labels[int(p.argmax())],
             "probs": {label: round(float(q), 6) for label, q in zip(self.labels, p, strict=True)}}
            for text, p in zip(texts, probs, strict=True)
        ]
        return results, guard.truncated
