"""Sentiment LightningModules: loss, metrics, the tokenizer and prediction around a network
of ``net.py``.

Legend: B batch, T time, C classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from nlp_lstm.data.batching import LengthGuard, pad_sequences
from nlp_lstm.data.tokenizer import Tokenizer
from nlp_lstm.sentiment.net import BagOfWordsNet, LSTMClassifierNet
from nlp_lstm.training.module import OptimizerFactory, SchedulerFactory, TaskModule


class TextClassifier(TaskModule):
    """Base of the sentiment models: subclasses build ``self.net`` (tokens, lengths -> logits).

    Args:
        tokenizer: the trained tokenizer as JSON; it travels inside the checkpoint.
        labels: label names, index i is class i.
        max_length: inputs are truncated to this many tokens at prediction time.
        class_weights: optional per-class weights of the cross-entropy.
        optimizer, scheduler: see ``TaskModule``.
    """

    task = "sentiment"
    #: Which tokens an input over ``max_length`` keeps (``LengthGuard`` policies); models
    #: trained on data truncated otherwise set it, so prediction sees what training saw.
    truncation: str = "head"

    def __init__(
        self,
        tokenizer: str,
        labels: Sequence[str],
        max_length: int = 256,
        class_weights: Sequence[float] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        labels = list(labels)
        if len(labels) < 2:
            raise ValueError(f"a classifier needs at least 2 labels, got {labels}")
        if class_weights is not None and len(class_weights) != len(labels):
            raise ValueError(f"class_weights has {len(class_weights)} entries, "
                             f"expected one per label ({len(labels)})")
        self.tokenizer = Tokenizer.from_json(tokenizer)
        self.labels = labels
        self.max_length = max_length
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

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> logits (B, C)."""
        return self.net(tokens, lengths)

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
        # Rows are true labels, columns predictions; reported by the train and eval commands.
        self.results["confusion"] = self.test_confusion.compute().tolist()
        self.test_confusion.reset()

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def predict(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """Label raw texts. Returns one ``{"text", "label", "probs"}`` per text and how many
        texts the length guard truncated."""
        guard = LengthGuard(self.max_length, self.truncation)
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


class SentimentClassifier(TextClassifier):
    """A (bidirectional) LSTM, GRU or Transformer classifier (``LSTMClassifierNet``).

    Args beyond ``TextClassifier``'s:
        embedding_dim: E.
        encoder: the encoder's settings: ``LSTMEncoder``'s (hidden_size, num_layers,
            bidirectional, dropout (between layers), cell (``gru`` for the LSTM-vs-GRU
            comparison), layer_norm, weight_drop, impl, init), or ``kind: transformer`` and
            ``TransformerEncoder``'s (see ``LSTMClassifierNet``).
        pooling: ``last``, ``mean``, ``max``, ``attention`` or ``concat`` (last, max and mean
            side by side, ULMFiT's).
        dropout: on the embeddings and before the head.
        chunk_length: read each document through the LSTM this many tokens at a time, the
            state carried across chunks (BPT3C; exact); None: one pass.
        layer_lr_decay: discriminative learning rates (``TaskModule.parameter_groups``).
        freeze: modules of the network kept fixed, e.g. ``[embedding, encoder]``: the
            pretrained encoder as a feature extractor (ELMo-style), only the head trains.
        init_from: where the weights start from (``nlp_lstm.training.transfer``): applied by the
            train command before fitting and kept as a record; loading a checkpoint never reads
            it.
        truncation: the data's length policy (``data.loader.truncation``), applied by ``predict``.
    """

    def __init__(
        self,
        tokenizer: str,
        labels: Sequence[str],
        embedding_dim: int = 128,
        encoder: Mapping[str, Any] | None = None,
        pooling: str = "max",
        dropout: float = 0.3,
        max_length: int = 256,
        class_weights: Sequence[float] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        layer_lr_decay: float | None = None,
        freeze: Sequence[str] = (),
        init_from: Mapping[str, Any] | None = None,
        truncation: str = "head",
        chunk_length: int | None = None,
    ) -> None:
        super().__init__(tokenizer, labels, max_length, class_weights, optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.layer_lr_decay = layer_lr_decay  # ULMFiT's 2.6 when fine-tuning a pretrained net
        self.net = LSTMClassifierNet(self.tokenizer.vocab_size, len(self.labels),
                                     self.tokenizer.pad_id, embedding_dim,
                                     dict(encoder or {"hidden_size": 128, "bidirectional": True}),
                                     pooling, dropout, chunk_length)
        LengthGuard(max_length, truncation)  # checks the policy's name
        self.truncation = truncation
        if freeze:
            self.freeze(list(freeze))


class BagOfWordsClassifier(TextClassifier):
    """The order-blind baseline (``BagOfWordsNet``). Args beyond ``TextClassifier``'s:
    embedding_dim E, hidden_size of the MLP, dropout."""

    def __init__(
        self,
        tokenizer: str,
        labels: Sequence[str],
        embedding_dim: int = 128,
        hidden_size: int = 256,
        dropout: float = 0.3,
        max_length: int = 256,
        class_weights: Sequence[float] | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(tokenizer, labels, max_length, class_weights, optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = BagOfWordsNet(self.tokenizer.vocab_size, len(self.labels),
                                 self.tokenizer.pad_id, embedding_dim, hidden_size, dropout)
