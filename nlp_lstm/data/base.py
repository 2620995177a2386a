"""What every task's LightningDataModule shares: the data root, sources, the tokenizer's life
cycle, bucketed batches, DataLoaders and corpus statistics.

Life cycle, as Lightning runs it under DDP:
- ``prepare_data`` (once per node, rank 0): download what is missing, train the tokenizer on the
  training split and cache it as JSON under ``cache_dir``.
- ``setup`` (every rank): load that tokenizer (or train the identical one: training is
  deterministic), then encode the splits on demand.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler

from nlp_lstm.data.batching import LengthGuard
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.sampler import BucketBatchSampler, check_batch_limits
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer

ON_ERROR = ("raise", "skip")


def default_data_root() -> Path:
    """``$NLP_LSTM_DATA``, else ``~/.cache/nlp_lstm``."""
    return Path(os.environ.get("NLP_LSTM_DATA") or Path.home() / ".cache" / "nlp_lstm")


def user_file(path: Path, split: str) -> Path:
    """``path`` if it is a file, else a DataError naming it and the config key to set."""
    if not path.is_file():
        raise DataError(f"{split} file not found: {path} (set data.source.{split})")
    return path


def file_fingerprint(*paths: Path) -> str:
    """Identifies files by path, size and modification time (cheap; no hashing of content)."""
    parts = []
    for p in paths:
        stat = p.stat()
        parts.append(f"{p.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class Source(Protocol):
    """Where a task's examples come from: an embedded corpus, a public data set, user files."""

    splits: tuple[str, ...]

    def prepare(self, root: Path) -> None:
        """Make the files available under ``root`` (download what is missing)."""

    def fingerprint(self, root: Path) -> str:
        """Changes whenever the training split would."""

    def load(self, split: str, root: Path, on_error: str) -> tuple[list[Any], int]:
        """The examples of a split and how many malformed ones were skipped."""


class TextDataModule(pl.LightningDataModule):
    """Base of the task data modules.

    Args:
        source: a ``Source``.
        tokenizer: how to train the tokenizer (a ``TokenizerTrainer``).
        root: the data root; None: ``$NLP_LSTM_DATA``, else ``~/.cache/nlp_lstm``.
        cache_dir: where trained tokenizers are cached; None: no cache.
        trained_tokenizer: a tokenizer as JSON (from a checkpoint) to use instead of training.
        batch_size: the most examples in a batch (None: only ``max_tokens`` limits it).
        max_tokens: the most padded positions (examples x longest) in a batch.
        max_length: longer inputs are truncated, and counted.
        on_error: ``raise`` on a malformed line of a user file, or ``skip`` it and count it.
        num_workers: DataLoader workers.
        seed: seeds the batch order, together with the epoch.
    """

    task: str = ""

    def __init__(
        self,
        source: Source,
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
    ) -> None:
        super().__init__()
        # Checked here too, since the sampler is built long after the configuration.
        check_batch_limits(batch_size, max_tokens, prefix="data.")
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.source = source
        self.tokenizer_trainer = tokenizer or TokenizerTrainer()
        self.root = Path(root).expanduser() if root else default_data_root()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.tokenizer = Tokenizer.from_json(trained_tokenizer) if trained_tokenizer else None
        self.batch_size, self.max_tokens, self.max_length = batch_size, max_tokens, max_length
        self.on_error = on_error
        self.num_workers = num_workers
        self.seed = seed
        self.skipped: dict[str, int] = {}
        self.guard = LengthGuard(max_length)
        self._raw: dict[str, list[Any]] = {}
        self._encoded: dict[str, list[Any]] = {}

    @property
    def truncated(self) -> int:
        """How many examples the length guard has cut so far."""
        return self.guard.truncated

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.source.splits)

    # ----------------------------------------------------------- tokenizer
    def tokenizer_texts(self) -> Iterable[str]:
        """The texts the tokenizer learns from: the training split only."""
        raise NotImplementedError

    def _tokenizer_cache(self, trainer: TokenizerTrainer, tag: str = "") -> Path | None:
        """Where a tokenizer trained by ``trainer`` on this source is cached (None: no cache);
        ``tag`` tells apart tokenizers of one source (e.g. the two sides of a translation)."""
        if self.cache_dir is None:
            return None
        key = f"{type(self).__name__}-{self.source.fingerprint(self.root)}-{tag}" \
              f"{trainer.fingerprint()}"
        return self.cache_dir / "tokenizers" / f"{key}.json"

    def tokenizers_to_build(self) -> dict[str, tuple[Path | None, Callable[[], Tokenizer]]]:
        """The tokenizers neither given nor built yet: attribute name -> (cache file, how to
        train it). Tasks with more than one tokenizer extend this."""
        if self.tokenizer is not None:
            return {}
        return {"tokenizer": (self._tokenizer_cache(self.tokenizer_trainer),
                              lambda: self.tokenizer_trainer.train(self.tokenizer_texts()))}

    def prepare_data(self) -> None:
        self.source.prepare(self.root)
        for cache, train in self.tokenizers_to_build().values():
            if cache is not None and not cache.exists():
                train().save(cache)

    def setup(self, stage: str | None = None) -> None:
        for name, (cache, train) in self.tokenizers_to_build().items():
            cached = cache is not None and cache.exists()
            setattr(self, name, Tokenizer.load(cache) if cached else train())

    def _examples(self, split: str) -> list[Any]:
        """The raw examples of a split, read once; malformed lines skipped are counted in
        ``skipped``. A source with ``any_split`` (such as Multi30k) also serves split names
        beyond its ``splits``, e.g. a test set for evaluation."""
        if split not in self.splits and not getattr(self.source, "any_split", False):
            raise ValueError(f"split {split!r} is not in this data; expected one of {self.splits}")
        if split not in self._raw:
            self._raw[split], self.skipped[split] = self.source.load(split, self.root,
                                                                     self.on_error)
        return self._raw[split]

    # ------------------------------------------------------------- batches
    def dataloader(self, split: str, *, shuffle: bool = False) -> DataLoader:
        """The batches of a split; ``shuffle`` for training."""
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")

    def _shard(self) -> tuple[int, int]:
        """(number of DDP ranks, this rank); (1, 0) outside a trainer."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def batch_sampler(self, lengths: list[int], *, shuffle: bool) -> BucketBatchSampler:
        """Length-bucketed batches; under DDP each rank takes its own shard. Training shards
        (``shuffle``) are even; evaluation shards cover every example exactly once."""
        replicas, rank = self._shard()
        return BucketBatchSampler(lengths, batch_size=self.batch_size, max_tokens=self.max_tokens,
                                  shuffle=shuffle, seed=self.seed, num_replicas=replicas,
                                  rank=rank, even_shards=shuffle)

    def loader(self, data: Any, collate_fn: Callable[[Any], dict[str, torch.Tensor]],
               batch_sampler: Sampler[list[int]] | None = None) -> DataLoader:
        """A DataLoader over ``data`` with this module's workers and seeded generator. Without a
        ``batch_sampler``, ``data`` yields whole batches (no automatic batching).

        The generator: without one, every iterator a DataLoader creates draws from the global
        torch RNG, so dropout masks would depend on when Lightning creates iterators (it does
        so earlier when resuming) and a resumed run would diverge."""
        return DataLoader(
            data,
            batch_size=1 if batch_sampler is not None else None,
            batch_sampler=batch_sampler,
            collate_fn=collate_fn,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    # ---------------------------------------------------------- statistics
    def statistics(self) -> dict[str, Any]:
        """Sizes of every split, the vocabulary size, and the padding waste of one epoch of
        training batches as the sampler makes them (padded positions / real tokens)."""
        raise NotImplementedError
