"""The teacher of a distillation (``nlp_lstm.sentiment.distill``): read and checked against the
student's data, its logits on the transfer set (computed once and cached on disk, keyed by the
teacher file's content and the transfer set's token ids: runs of several seeds or recipes share
one teacher and one transfer set, and the teacher's pass over an augmented transfer set costs as
much as an epoch of the student), and its word embedding for the student's.

Legend: N examples of the transfer set, C classes, V vocab, E embedding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.sentiment.module import TextClassifier
from nlp_lstm.training.checkpoint import CheckpointError, build_model, read_checkpoint
from nlp_lstm.training.module import TaskModule

log = logging.getLogger(__name__)


def load_teacher(path: str | Path, *, task: str, models: Sequence[type[TaskModule]],
                 tokenizer_json: str, labels: Sequence[str]) -> TextClassifier:
    """The teacher at ``path`` (a checkpoint of ``task``, of one of ``models``), checked to have
    the data's tokenizer and labels; a CheckpointError (a ValueError) naming what differs."""
    role = "model.teacher_ckpt"
    teacher = build_model(read_checkpoint(path, role), path, task, models)
    if not isinstance(teacher, TextClassifier):
        raise CheckpointError(f"{role}={path} is a {type(teacher).__name__}, not a text "
                              "classifier")
    theirs = teacher.tokenizer
    if json.loads(tokenizer_json) != json.loads(theirs.to_json()):
        ours = json.loads(tokenizer_json)
        raise CheckpointError(
            f"the teacher {path} has another tokenizer than the data ({theirs.kind}, "
            f"{theirs.vocab_size} entries; the data's: {ours.get('kind')}): distill on the data "
            "the teacher learned from, with its data.tokenizer settings")
    if list(teacher.labels) != list(labels):
        raise CheckpointError(f"the teacher {path} has labels {list(teacher.labels)}, the data "
                              f"{list(labels)}")
    return teacher


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
