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

Legend: B batch, T time, C classes, N examples of the transfer set, E embedding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import uuid
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nlp_lstm.checkpoint import CheckpointError, load_model
from nlp_lstm.data.base import Source
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.data.tokenizer import TokenizerTrainer
from nlp_lstm.module import OptimizerFactory, SchedulerFactory
from nlp_lstm.sentiment.data import SentimentDataModule
from nlp_lstm.sentiment.module import BagOfWordsClassifier, SentimentClassifier, TextClassifier

log = logging.getLogger(__name__)

#: The label of transfer-set examples that only the teacher labels (cross-entropy's default
#: ``ignore_index``, so a plain classifier skips them too).
UNLABELED = -100
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


# -------------------------------------------------------------- transfer set
class Augmentation:
    """Unlabeled variants of the training examples, on token ids (Tang et al. 2019, without
    part-of-speech-guided synonyms): each token is masked (replaced by ``<unk>``) with
    probability ``p_mask`` or dropped with ``p_drop``; then, with probability ``p_ngram``, only a
    random n-gram of the result is kept, n uniform in 1..``ngram_max``. Variants equal to a
    training example or to an earlier variant are discarded.

    Args:
        copies: how many rounds over the training examples (each adds at most one variant of
            every example).
        p_mask, p_drop, p_ngram: the probabilities above.
        ngram_max: the longest n-gram kept.
        min_length: examples shorter than this many tokens get no variants.
        seed: the variants' own seed, apart from the run's: runs of different seeds share one
            transfer set, and so one cache of the teacher's logits.
    """

    def __init__(self, copies: int = 1, p_mask: float = 0.1, p_drop: float = 0.0,
                 p_ngram: float = 0.25, ngram_max: int = 5, min_length: int = 2,
                 seed: int = 0) -> None:
        if copies < 0:
            raise ValueError(f"augment.copies must be >= 0, got {copies}")
        for name, p in (("p_mask", p_mask), ("p_drop", p_drop), ("p_ngram", p_ngram)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augment.{name} must be a probability in [0, 1], got {p}")
        if p_mask + p_drop > 1.0:
            raise ValueError(f"augment.p_mask + augment.p_drop must be at most 1, got "
                             f"{p_mask} + {p_drop}")
        if ngram_max < 1:
            raise ValueError(f"augment.ngram_max must be >= 1, got {ngram_max}")
        self.copies, self.p_mask, self.p_drop, self.p_ngram = copies, p_mask, p_drop, p_ngram
        self.ngram_max, self.min_length, self.seed = ngram_max, min_length, seed

    def __call__(self, sequences: Sequence[Sequence[int]], mask_id: int) -> list[list[int]]:
        """The new variants of ``sequences``, in a deterministic order."""
        rng = random.Random(self.seed)
        seen = {tuple(seq) for seq in sequences}
        variants = []
        for _ in range(self.copies):
            for seq in sequences:
                if len(seq) < self.min_length:
                    continue
                variant = []
                for token in seq:
                    r = rng.random()
                    if r < self.p_mask:
                        variant.append(mask_id)
                    elif r >= self.p_mask + self.p_drop:
                        variant.append(token)
                if len(variant) > 1 and rng.random() < self.p_ngram:
                    n = rng.randint(1, min(self.ngram_max, len(variant)))
                    start = rng.randrange(len(variant) - n + 1)
                    variant = variant[start : start + n]
                key = tuple(variant)
                if variant and key not in seen:
                    seen.add(key)
                    variants.append(variant)
        return variants


class TransferSetDataModule(SentimentDataModule):
    """A sentiment data module whose training split is a transfer set: the labeled training
    examples, then (with ``augment``) unlabeled variants of them, labeled ``UNLABELED``. The
    other splits, and the tokenizer (trained on the labeled texts only), are those of
    ``SentimentDataModule``.

    Args:
        augment: an ``Augmentation``, or None for the labeled examples alone.
        Others: those of ``TextDataModule``.
    """

    def __init__(
        self,
        source: Source,
        augment: Augmentation | None = None,
        tokenizer: TokenizerTrainer | None = None,
        root: str | None = None,
        cache_dir: str | None = None,
        trained_tokenizer: str | None = None,
        batch_size: int | None = 64,
        max_tokens: int | None = None,
        max_length: int = 256,
        on_error: str = "raise",
        num_workers: int = 0,
        seed: int = 0,
        truncation: str = "head",
        train_examples: int | None = None,
    ) -> None:
        super().__init__(source, tokenizer=tokenizer, root=root, cache_dir=cache_dir,
                         trained_tokenizer=trained_tokenizer, batch_size=batch_size,
                         max_tokens=max_tokens, max_length=max_length, on_error=on_error,
                         num_workers=num_workers, seed=seed, truncation=truncation,
                         train_examples=train_examples)
        self.augment = augment

    def dataset(self, split: str) -> list[tuple[list[int], int]]:
        if split != "train" or self.augment is None or "train" in self._encoded:
            return super().dataset(split)
        labeled = super().dataset("train")
        variants = self.augment([ids for ids, _ in labeled], mask_id=self.tokenizer.unk_id)
        log.info("transfer set: %d labeled examples and %d unlabeled variants",
                 len(labeled), len(variants))
        self._encoded["train"] = labeled + [(ids, UNLABELED) for ids in variants]
        return self._encoded["train"]


# ----------------------------------------------------------- teacher logits
def sequences_fingerprint(sequences: Iterable[Sequence[int]]) -> str:
    """A hash of token id sequences, their order and boundaries included."""
    digest = hashlib.sha256()
    for seq in sequences:
        digest.update(len(seq).to_bytes(4, "little"))
        digest.update(array("q", seq).tobytes())
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """A hash of a file's content (a checkpoint rewritten in place gets a new one)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@torch.no_grad()
def compute_logits(model: TextClassifier, sequences: Sequence[Sequence[int]],
                   batch_size: int = 512) -> torch.Tensor:
    """The model's logits (N, C), float32 on CPU, in eval mode, in the order of ``sequences``.

    They run in batches of equal lengths: no padding, so the encoder may take its fused
    kernels, exact then in both directions (several times the speed of the packed loop)."""
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    logits = torch.empty(len(sequences), len(model.labels))  # (N, C)
    start = 0
    while start < len(order):
        length = len(sequences[order[start]])
        end = start + 1
        while (end < len(order) and end - start < batch_size
               and len(sequences[order[end]]) == length):
            end += 1
        rows = order[start:end]
        tokens, lengths = pad_sequences([sequences[i] for i in rows], model.tokenizer.pad_id)
        logits[rows] = model(tokens, lengths).float()  # (b, C)
        start = end
    return logits


def needs_teacher(alpha: float, init_embedding: str) -> bool:
    """Whether a student reads its teacher: for soft targets (alpha < 1) or its embedding."""
    return alpha < 1 or init_embedding == "teacher"


def teacher_logits(teacher: TextClassifier, teacher_ckpt: Path,
                   sequences: Sequence[Sequence[int]], cache_dir: Path | None) -> torch.Tensor:
    """The teacher's logits (N, C) on ``sequences``, from the cache under
    ``cache_dir/teacher_logits`` when there, else computed (and cached when ``cache_dir``)."""
    cache = None
    if cache_dir is not None:
        key = f"{file_digest(teacher_ckpt)}-{sequences_fingerprint(sequences)}"
        cache = cache_dir / "teacher_logits" / f"{key}.pt"
        if cache.is_file():
            logits = torch.load(cache, map_location="cpu", weights_only=True)["logits"]
            log.info("teacher logits of %d examples read from %s", len(logits), cache)
            return logits
    logits = compute_logits(teacher, sequences)
    if cache is not None:
        # Atomic: another DDP rank or a concurrent run never reads half a file.
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{uuid.uuid4().hex}.tmp")  # pids repeat across nodes
        torch.save({"logits": logits}, tmp)
        os.replace(tmp, cache)
    return logits


def teacher_embedding(teacher: TextClassifier, dim: int) -> torch.Tensor:
    """The teacher's word embedding (V, E) for a student's of ``dim`` <= E columns: the
    teacher's own when ``dim`` is E, else its first ``dim`` principal components (PCA over the
    vocabulary); the padding row stays 0."""
    weight = teacher.net.embedding.weight.detach().float()  # (V, E)
    E = weight.shape[1]
    if dim > E:
        raise ValueError(f"model.init_embedding=teacher needs model.embedding_dim <= {E} (the "
                         f"teacher's), got {dim}")
    if dim == E:
        return weight.clone()
    centered = weight - weight.mean(0)  # (V, E)
    _, _, vh = torch.linalg.svd(centered, full_matrices=False)  # vh (E, E), rows by variance
    projected = centered @ vh[:dim].T  # (V, dim)
    projected[teacher.tokenizer.pad_id] = 0.0
    return projected


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
    ) -> None:
        check_distillation(alpha, temperature, soft_loss)
        if init_embedding not in EMBEDDING_INITS:
            raise ValueError(f"model.init_embedding must be one of {EMBEDDING_INITS}, got "
                             f"{init_embedding!r}")
        if teacher_ckpt is None and needs_teacher(alpha, init_embedding):
            raise ValueError(f"model.teacher_ckpt is needed with model.alpha={alpha} and "
                             f"model.init_embedding={init_embedding}; only alpha=1 with a random "
                             f"embedding trains without a teacher")
        super().__init__(tokenizer, labels, embedding_dim, encoder, pooling, dropout, max_length,
                         class_weights, optimizer, scheduler, layer_lr_decay, freeze, init_from,
                         truncation)
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
        try:
            teacher = load_model(self.teacher_ckpt, self.task,
                                 (SentimentClassifier, BagOfWordsClassifier, DistilledClassifier))
        except CheckpointError as e:
            raise ValueError(f"model.teacher_ckpt: {e}") from None
        if not isinstance(teacher, TextClassifier):
            raise ValueError(f"model.teacher_ckpt={self.teacher_ckpt} is a "
                             f"{type(teacher).__name__}, not a text classifier")
        ours, theirs = self.tokenizer, teacher.tokenizer
        if json.loads(ours.to_json()) != json.loads(theirs.to_json()):
            raise ValueError(
                f"the teacher {self.teacher_ckpt} has another tokenizer than the data "
                f"({theirs.kind}, {theirs.vocab_size} entries; the data's: {ours.kind}, "
                f"{ours.vocab_size}): distill on the data the teacher learned from, with its "
                f"data.tokenizer settings")
        if list(teacher.labels) != list(self.labels):
            raise ValueError(f"the teacher {self.teacher_ckpt} has labels {list(teacher.labels)}, "
                             f"the data {list(self.labels)}")
        return teacher

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
