"""What every task's LightningDataModule shares: the data root, sources, the life cycle of
fitted state (``nlp_lstm.fitted``), bucketed batches, DataLoaders and corpus statistics; and,
for text, the tokenizer's part of it.

``DataModule`` assumes nothing of the examples: token ids, feature vectors, anything a source
loads. ``TextDataModule`` adds a tokenizer learnt from the training split.

Life cycle of fitted state (a tokenizer, a per-feature scaler), as Lightning runs it under DDP:
- ``prepare_data`` (once per node, rank 0): download what is missing, fit each missing state
  on the training split and cache it as JSON under ``cache_dir``.
- ``setup`` (every rank): load those caches (or fit the identical states: fitting is
  deterministic), then encode the splits on demand.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler

from nlp_lstm.data.batching import LengthGuard
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.sampler import BucketBatchSampler
from nlp_lstm.data.tokenizer import Tokenizer, TokenizerTrainer
from nlp_lstm.fitted import Fitted, load_fitted, save_fitted


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


class ToFit(NamedTuple):
    """A fitted state still to build (see ``DataModule.fitted_to_build``).

    Attributes:
        cache: the JSON file it is cached in (see ``DataModule.fitted_cache``); None: no cache.
        fit: fits it on the training split, deterministically.
        kind: its class, whose ``from_json`` reads the cache.
    """

    cache: Path | None
    fit: Callable[[], Fitted]
    kind: type[Fitted]


class DataModule(pl.LightningDataModule):
    """Base of the task data modules; assumes nothing of the examples (no vocabulary).

    A subclass serves batches (``dataloader``), reports ``statistics`` and, when its models
    carry fitted state, names it (``fitted_names``) and says how to fit what is missing
    (``fitted_to_build``): the base caches, loads and exports it.

    Args:
        source: a ``Source``.
        root: the data root; None: ``$NLP_LSTM_DATA``, else ``~/.cache/nlp_lstm``.
        cache_dir: where fitted state is cached; None: no cache.
        loader: how examples become batches (``LoaderOptions``: batch size and token budget,
            length limit and truncation, malformed lines, workers, seed, a training subset);
            a mapping of its fields also works; None: ``default_loader``.
    """

    task: str = ""

    #: The options of a data module built without ``loader`` (a task may change the defaults).
    default_loader = LoaderOptions()

    def __init__(
        self,
        source: Source,
        root: str | None = None,
        cache_dir: str | None = None,
        loader: LoaderOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.options = LoaderOptions.of(loader, self.default_loader)
        self.source = source
        self.root = Path(root).expanduser() if root else default_data_root()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.skipped: dict[str, int] = {}
        self.guard = LengthGuard(self.options.max_length, self.options.truncation)
        self._raw: dict[str, list[Any]] = {}
        self._encoded: dict[str, list[Any]] = {}

    @property
    def truncated(self) -> int:
        """How many examples the length guard has cut so far."""
        return self.guard.truncated

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.source.splits)

    # -------------------------------------------------------- fitted state
    def fitted_names(self) -> tuple[str, ...]:
        """The attributes holding the fitted state a model of this data carries, named as the
        model's constructor arguments (e.g. ``("tokenizer",)``); none by default."""
        return ()

    def fitted_to_build(self) -> dict[str, ToFit]:
        """The fitted states neither given nor built yet: attribute name -> ``ToFit``. Empty
        once ``setup`` has run."""
        return {}

    def fitted_cache(self, fingerprint: str, tag: str = "", folder: str = "fitted") -> Path | None:
        """Where a state fitted on this source is cached (None: no cache): a file named after
        this class, the source's fingerprint, ``tag`` (which tells apart states of one kind,
        e.g. the two sides of a translation) and the fitter's own ``fingerprint`` (its
        recipe), under ``cache_dir/folder``."""
        if self.cache_dir is None:
            return None
        key = f"{type(self).__name__}-{self.source.fingerprint(self.root)}-{tag}{fingerprint}"
        if self.options.train_examples is not None:  # fitted on the subset only
            key += f"-subset{self.options.train_examples}"
        return self.cache_dir / folder / f"{key}.json"

    def prepare_data(self) -> None:
        self.source.prepare(self.root)
        for cache, fit, _ in self.fitted_to_build().values():
            if cache is not None and not cache.exists():
                save_fitted(fit(), cache)

    def setup(self, stage: str | None = None) -> None:
        for name, (cache, fit, kind) in self.fitted_to_build().items():
            cached = cache is not None and cache.exists()
            setattr(self, name, load_fitted(kind, cache) if cached else fit())

    def fitted_state(self) -> dict[str, str]:
        """What travels with a model: attribute name -> the fitted object's JSON, for each of
        ``fitted_names`` (fitted first when missing)."""
        if self.fitted_to_build():
            self.setup()
        return {name: getattr(self, name).to_json() for name in self.fitted_names()}

    def _examples(self, split: str) -> list[Any]:
        """The raw examples of a split, read once; malformed lines skipped are counted in
        ``skipped``. A source with ``any_split`` (such as Multi30k) also serves split names
        beyond its ``splits``, e.g. a test set for evaluation."""
        if split not in self.splits and not getattr(self.source, "any_split", False):
            raise ValueError(f"split {split!r} is not in this data; expected one of {self.splits}")
        if split not in self._raw:
            examples, self.skipped[split] = self.source.load(split, self.root,
                                                             self.options.on_error)
            subset = self.options.train_examples
            if split == "train" and subset is not None:
                if subset > len(examples):
                    raise ValueError(f"data.loader.train_examples={subset} exceeds the "
                                     f"{len(examples)} training examples")
                keep = sorted(random.Random(0).sample(range(len(examples)), subset))
                examples = [examples[i] for i in keep]  # in their order in the data
            self._raw[split] = examples
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
        options = self.options
        return BucketBatchSampler(lengths, batch_size=options.batch_size,
                                  max_tokens=options.max_tokens, shuffle=shuffle,
                                  seed=options.seed, num_replicas=replicas,
                                  rank=rank, even_shards=shuffle)

    def loader(self, data: Any, collate_fn: Callable[[Any], dict[str, Any]],
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
            num_workers=self.options.num_workers,
            persistent_workers=self.options.num_workers > 0,
            generator=torch.Generator().manual_seed(self.options.seed),
        )

    def evaluation_size(self, loader: DataLoader) -> tuple[str, int]:
        """What an evaluation over ``loader`` (one of ``dataloader``'s) counts, as (unit, count):
        by default its examples."""
        return "examples", len(loader.dataset)

    # ---------------------------------------------------------- statistics
    def statistics(self) -> dict[str, Any]:
        """``splits``: per split, ``examples`` and the task's own sizes (``skipped`` where
        lines were); ``padding_waste``: padded positions / real ones over one epoch of training
        batches as the sampler makes them; and what the data has besides (``vocab_size``)."""
        raise NotImplementedError


class TextDataModule(DataModule):
    """Base of the text task data modules: a ``DataModule`` whose fitted state is a tokenizer
    learnt from the training split (``tokenizer_texts``), or given as JSON.

    Args:
        source: a ``Source``.
        tokenizer: how to train the tokenizer (a ``TokenizerTrainer``).
        root: the data root; None: ``$NLP_LSTM_DATA``, else ``~/.cache/nlp_lstm``.
        cache_dir: where trained tokenizers are cached (under ``tokenizers/``); None: no cache.
        trained_tokenizer: a tokenizer as JSON (from a checkpoint) to use instead of training.
        Others: those of ``DataModule``.
    """

    def __init__(
        self,
        source: Source,
        tokenizer: TokenizerTrainer | None = None,
        root: str | None = None,
        cache_dir: str | None = None,
        trained_tokenizer: str | None = None,
        loader: LoaderOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(source, root=root, cache_dir=cache_dir, loader=loader)
        self.tokenizer_trainer = tokenizer or TokenizerTrainer()
        self.tokenizer = Tokenizer.from_json(trained_tokenizer) if trained_tokenizer else None

    def tokenizer_texts(self) -> Iterable[str]:
        """The texts the tokenizer learns from: the training split only."""
        raise NotImplementedError

    def tokenizer_to_fit(self, trainer: TokenizerTrainer, texts: Callable[[], Iterable[str]],
                         tag: str = "") -> ToFit:
        """A tokenizer that ``trainer`` learns from ``texts()``, cached under
        ``cache_dir/tokenizers``; ``tag`` tells apart tokenizers of one source."""
        return ToFit(self.fitted_cache(trainer.fingerprint(), tag, folder="tokenizers"),
                     lambda: trainer.train(texts()), Tokenizer)

    def fitted_names(self) -> tuple[str, ...]:
        return ("tokenizer",)

    def fitted_to_build(self) -> dict[str, ToFit]:
        """The tokenizer, unless given or built. Tasks with more than one extend this."""
        if self.tokenizer is not None:
            return {}
        return {"tokenizer": self.tokenizer_to_fit(self.tokenizer_trainer, self.tokenizer_texts)}
