"""Knowledge distillation of a sentiment classifier into a smaller student.

The student learns from ``alpha * CE(labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``
(Hinton et al. 2015), where ``x_T`` is the softmax of logits divided by the temperature T.
The teacher is any sentiment checkpoint with the same tokenizer and labels as the data. Its
logits on the training split (the transfer set) are computed once, before the first step, and
kept in memory, looked up by the ``index`` every sentiment batch carries; they are also cached
on disk, keyed by the teacher file's content and the transfer set's token ids, because runs of
several seeds or recipes share one teacher and one transfer set, and the teacher's forward pass
over an augmented transfer set costs as much as an epoch of the student.

The transfer set may be augmented with unlabeled variants of the training examples (Tang et
al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks": masking
and n-gram sampling; no synonyms here): they carry the label ``UNLABELED``, so only the teacher
teaches them, and the cross-entropy averages over the labeled examples of a batch.

The saved student is an ordinary sentiment checkpoint: loading it never reads the teacher.
The transfer set is built in ``nlp_lstm.sentiment.transfer_set``, the teacher read, checked and
run in ``nlp_lstm.sentiment.teacher``; this module holds the loss and the student.

Legend: B batch, T time, C classes, N examples of the transfer set, E embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nlp_lstm.sentiment.module import BagOfWordsClassifier, SentimentClassifier, TextClassifier
from nlp_lstm.sentiment.teacher import load_teacher, teacher_embedding, teacher_logits
from nlp_lstm.sentiment.transfer_set import UNLABELED
from nlp_lstm.training.module import OptimizerFactory, SchedulerFactory

SOFT_LOSSES = ("kl", "mse")
EMBEDDING_INITS = ("random", "teacher")


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    soft_loss: str = "kl",
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``alpha * hard + (1 - alpha) * soft``; returns (total, hard, soft), scalars.

    Args:
        student, teacher: logits (B, C).
        labels: (B,) class indices, ``UNLABELED`` where only the teacher labels the example.
        alpha: the weight of the cross-entropy with the labels, in [0, 1].
        temperature: T > 0 of ``kl``.
        soft_loss: ``kl``: ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, the mean
            over the batch of the sum over classes (the T^2 keeps its gradients on the scale of
            the cross-entropy's as T changes); ``mse``: the mean squared difference of the
            logits (Tang et al. 2019; T plays no part).
        class_weights: (C,) weights of the cross-entropy, or None.

    ``hard`` is the cross-entropy averaged over the labeled examples of the batch (0 when there
    are none), ``soft`` is averaged over all of them (0 when alpha is 1: not computed).
    """
    check_distillation(alpha, temperature, soft_loss)
    labeled = labels != UNLABELED  # (B,)
    if bool(labeled.any()):
        hard = F.cross_entropy(student, labels, weight=class_weights, ignore_index=UNLABELED)
    else:
        hard = student.sum() * 0.0  # keeps the graph, adds nothing
    if alpha == 1:  # labels only: the teacher's logits are not even looked at
        soft = torch.zeros_like(hard)
    elif soft_loss == "kl":
        log_p_student = F.log_softmax(student / temperature, dim=-1)  # (B, C)
        log_p_teacher = F.log_softmax(teacher / temperature, dim=-1)  # (B, C)
        soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
        soft = soft * temperature**2
    else:
        soft = F.mse_loss(student, teacher)
    return alpha * hard + (1.0 - alpha) * soft, hard, soft


def check_distillation(alpha: float, temperature: float, soft_loss: str) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"model.alpha must be in [0, 1] (the weight of the labels' "
                         f"cross-entropy), got {alpha}")
    if not temperature > 0:
        raise ValueError(f"model.temperature must be positive, got {temperature}")
    if soft_loss not in SOFT_LOSSES:
        raise ValueError(f"model.soft_loss must be one of {SOFT_LOSSES}, got {soft_loss!r}")


def needs_teacher(alpha: float, init_embedding: str) -> bool:
    """Whether a student reads its teacher: for soft targets (alpha < 1) or its embedding."""
    return alpha < 1 or init_embedding == "teacher"



# ----------------------------------------------------------------- student
class DistilledClassifier(SentimentClassifier):
    """A ``SentimentClassifier`` trained against a teacher (a smaller one, usually: a
    unidirectional LSTM or GRU). Evaluation and prediction are those of every sentiment model.

    Args beyond ``SentimentClassifier``'s:
        teacher_ckpt: a sentiment checkpoint with the data's tokenizer and labels; read at the
            start of training only (never when the student loads). Needed unless ``alpha`` is 1
            and ``init_embedding`` is ``random``: then the teacher is not read at all.
        alpha: the weight of the labels' cross-entropy, in [0, 1]; 1: labels only.
        temperature: T > 0 of the KL term.
        soft_loss: ``kl`` (the formula above) or ``mse`` (on logits).
        init_embedding: ``random``, or ``teacher``: start from the teacher's word embeddings
            (same tokenizer, so same rows; with a smaller ``embedding_dim``, their first
            principal components).
        cache_dir: where the teacher's logits are cached; None: recomputed by every run.
    """

    def __init__(
        self,
        *,
        tokenizer: str,
        labels: Sequence[str],
        teacher_ckpt: str | None = None,
        alpha: float = 0.5,
        temperature: float = 2.0,
        soft_loss: str = "kl",
        init_embedding: str = "random",
        cache_dir: str | None = None,
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
        check_distillation(alpha, temperature, soft_loss)
        if init_embedding not in EMBEDDING_INITS:
            raise ValueError(f"model.init_embedding must be one of {EMBEDDING_INITS}, got "
                             f"{init_embedding!r}")
        if teacher_ckpt is None and needs_teacher(alpha, init_embedding):
            raise ValueError(f"model.teacher_ckpt is needed with model.alpha={alpha} and "
                             f"model.init_embedding={init_embedding}; only alpha=1 with a random "
                             f"embedding trains without a teacher")
        super().__init__(tokenizer=tokenizer, labels=labels, embedding_dim=embedding_dim,
                         encoder=encoder, pooling=pooling, dropout=dropout,
                         max_length=max_length, class_weights=class_weights,
                         optimizer=optimizer, scheduler=scheduler,
                         layer_lr_decay=layer_lr_decay, freeze=freeze, init_from=init_from,
                         truncation=truncation, chunk_length=chunk_length)
        self.teacher_ckpt = teacher_ckpt
        self.alpha, self.temperature, self.soft_loss = alpha, temperature, soft_loss
        self.init_embedding = init_embedding
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        # (N, C), set at the start of training; not persistent: never in a checkpoint.
        self.register_buffer("teacher_logits", None, persistent=False)

    @property
    def uses_teacher(self) -> bool:
        return needs_teacher(self.alpha, self.init_embedding)

    def load_teacher(self) -> TextClassifier:
        """The teacher, checked against this student's tokenizer and labels."""
        return load_teacher(self.teacher_ckpt, task=self.task,
                            models=(SentimentClassifier, BagOfWordsClassifier, type(self)),
                            tokenizer_json=self.tokenizer.to_json(), labels=self.labels)

    def setup(self, stage: str) -> None:
        # Runs before Lightning restores a checkpoint to resume from, so a resumed run keeps
        # its own embedding; the teacher's logits are recomputed (or read from the cache).
        if stage != "fit":
            return
        transfer = self._transfer_set()
        unlabeled = sum(label == UNLABELED for _, label in transfer)
        if self.alpha == 1 and unlabeled:
            raise ValueError(f"model.alpha=1 learns from labels alone, but the training data "
                             f"holds {unlabeled} unlabeled examples: set data.augment=null")
        if not self.uses_teacher:
            return
        teacher = self.load_teacher()
        if self.init_embedding == "teacher":
            with torch.no_grad():
                self.net.embedding.weight.copy_(
                    teacher_embedding(teacher, self.net.embedding.embedding_dim))
        if self.alpha < 1:
            sequences = [ids for ids, _ in transfer]
            logits = teacher_logits(teacher, Path(self.teacher_ckpt), sequences, self.cache_dir)
            self.teacher_logits = logits  # (N, C), moves with the module to its device

    def _transfer_set(self) -> list[tuple[list[int], int]]:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise ValueError("distillation trains from a data module (its training split is the "
                             "transfer set): pass datamodule= to the trainer")
        return datamodule.dataset("train")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.alpha == 1:
            return super().training_step(batch, batch_idx)
        logits = self(batch["tokens"], batch["lengths"])  # (B, C)
        teacher = self.teacher_logits[batch["index"]]  # (B, C)
        loss, hard, soft = distillation_loss(logits, teacher, batch["labels"], self.alpha,
                                             self.temperature, self.soft_loss,
                                             self.class_weights)
        B = len(logits)
        self.log("train/loss", loss, prog_bar=True, batch_size=B)
        self.log("train/hard", hard, batch_size=B)
        self.log("train/soft", soft, batch_size=B)
        return loss
