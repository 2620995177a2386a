"""Generation data: sources of plain text (Tiny Shakespeare, the user's text files) and the
LightningDataModule that serves them as contiguous streams or bucketed sentences of next-token
examples.

(The embedded corpus is ``nlp_lstm.generation.corpus.SyntheticText``.) A text source yields a
split as a list of documents and names the ``separator`` that joins them back into the split's
text. For the files here a document is a line: ``separator.join(lines)`` restores the text
exactly, and the sentences mode serves each non-empty line as an example.

Legend: B batch (streams or examples), T time steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from nlp_lstm.data.base import Source, TextDataModule, file_fingerprint, user_file
from nlp_lstm.data.batching import pad_sequences
from nlp_lstm.data.download import RemoteFile, require
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.data.readers import read_text
from nlp_lstm.data.sampler import StreamBatcher, padding_waste
from nlp_lstm.data.tokenizer import TokenizerTrainer

#: Canonical source of Tiny Shakespeare under the data root.
SHAKESPEARE_FILES: dict[str, RemoteFile] = {
    "tinyshakespeare/input.txt": RemoteFile(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
}


def split_tinyshakespeare(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """nanoGPT's split: the first ``int(n * 0.9)`` characters train, the rest validation."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]


class TinyShakespeare:
    """Karpathy's Tiny Shakespeare under ``root/tinyshakespeare/input.txt`` (1,115,394
    characters), split as nanoGPT does: the first 90% of the characters are ``train``
    (1,003,854), the rest ``val`` (111,540). The cut falls inside a line.

    Args:
        download: fetch the file from the char-rnn repository when it is missing.
        urls: overrides of the download source, e.g. a mirror:
            ``{"tinyshakespeare/input.txt": {"url": ..., "sha256": ...}}``.
    """

    splits: tuple[str, ...] = ("train", "val")
    separator: str = "\n"
    file = "tinyshakespeare/input.txt"

    def __init__(self, download: bool = True,
                 urls: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.download = download
        self.urls = dict(urls or {})

    def _path(self, root: Path) -> Path:
        return require(root, self.file, sources={**SHAKESPEARE_FILES, **self.urls},
                       download=self.download, what="input.txt")

    def prepare(self, root: Path) -> None:
        self._path(root)

    def fingerprint(self, root: Path) -> str:
        return file_fingerprint(self._path(root))

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list[str], int]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for Tiny Shakespeare; "
                             f"expected one of {self.splits}")
        train, val = split_tinyshakespeare(read_text(self._path(root)))
        return (train if split == "train" else val).split(self.separator), 0


class TextFiles:
    """The user's own UTF-8 text files (plain or .gz), one per split; Windows line endings
    become ``\\n``.

    Args:
        train: the training text.
        val: the validation text; None: the last ``val_fraction`` of the training text's
            characters is held out as validation (and the rest trains).
        test: an optional test text.
        val_fraction: the share of ``train`` held out when there is no ``val`` file.
    """

    separator: str = "\n"

    def __init__(
        self,
        train: str,
        val: str | None = None,
        test: str | None = None,
        val_fraction: float = 0.1,
    ) -> None:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.paths = {k: Path(v).expanduser() for k, v in
                      (("train", train), ("val", val), ("test", test)) if v}
        self.val_fraction = val_fraction
        self.splits = ("train", "val", *(("test",) if test else ()))

    def _existing(self, split: str) -> Path:
        return user_file(self.paths[split], split)

    def prepare(self, root: Path) -> None:
        for split in self.paths:
            self._existing(split)

    def fingerprint(self, root: Path) -> str:
        # The held-out share changes the training text, so it is part of the identity.
        held_out = "" if "val" in self.paths else f"-{self.val_fraction}"
        return file_fingerprint(self._existing("train")) + held_out

    def _text(self, split: str) -> str:
        return read_text(self._existing(split)).replace("\r\n", "\n")

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list[str], int]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this data has {self.splits}")
        if split in self.paths and (split != "train" or "val" in self.paths):
            text = self._text(split)
        else:  # train and val both come from the train file
            path, whole = self._existing("train"), self._text("train")
            held_out = int(len(whole) * self.val_fraction)
            if held_out == 0 or held_out == len(whole):
                raise DataError(
                    f"{path}: {len(whole)} characters are too few to hold out "
                    f"val_fraction={self.val_fraction} as validation; expected a longer text "
                    "or a val file (data.source.val)")
            cut = len(whole) - held_out
            text = whole[:cut] if split == "train" else whole[cut:]
        return text.split(self.separator), 0


class IMDBReviews:
    """The 50,000 unlabelled IMDB reviews (Maas et al. 2011) under ``root/imdb/unsup.txt.gz``,
    one review a line, for language-model pretraining: the last ``val_reviews`` are ``val``,
    the others ``train``. The reviews keep their HTML line breaks (``<br />``); the tokenizer's
    ``review`` normaliser maps them to spaces (``nlp_lstm.data.tokenizer.NORMALIZERS``), the
    same for pretraining and fine-tuning.

    Args:
        val_reviews: reviews held out for validation.
    """

    splits: tuple[str, ...] = ("train", "val")
    separator: str = "\n"
    file = "imdb/unsup.txt.gz"

    def __init__(self, val_reviews: int = 2000) -> None:
        if not isinstance(val_reviews, int) or not 0 < val_reviews < 50_000:
            raise ValueError(f"val_reviews must be an integer in (0, 50000), got {val_reviews!r}")
        self.val_reviews = val_reviews

    def _path(self, root: Path) -> Path:
        path = root / self.file
        if not path.is_file():
            raise DataError(f"IMDB reviews not found: {path}; expected the unlabelled reviews "
                            "one a line (see the shared data README), under the data root "
                            "(NLP_LSTM_DATA)")
        return path

    def prepare(self, root: Path) -> None:
        self._path(root)

    def fingerprint(self, root: Path) -> str:
        return f"{file_fingerprint(self._path(root))}-{self.val_reviews}"

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list[str], int]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for the IMDB reviews; expected one of "
                             f"{self.splits}")
        reviews = [line for line in read_text(self._path(root)).split("\n") if line.strip()]
        if len(reviews) <= self.val_reviews:
            raise DataError(f"{self._path(root)}: {len(reviews)} reviews, too few to hold out "
                            f"val_reviews={self.val_reviews}")
        cut = len(reviews) - self.val_reviews
        return (reviews[:cut] if split == "train" else reviews[cut:]), 0


class LabeledText:
    """The text of a labelled source (SST-2, IMDB, the user's TSV files) without its labels, one
    document per example: to fine-tune a pretrained language model on the target task's text
    before its classifier (ULMFiT's second stage). Reads only the splits it is asked for.

    Args:
        source: a sentiment source (``nlp_lstm.sentiment.SST2``, ``IMDB``, ``LabeledTSV``).
    """

    separator: str = "\n"

    def __init__(self, source: Source) -> None:
        self.source = source
        self.splits = tuple(source.splits)

    def prepare(self, root: Path) -> None:
        self.source.prepare(root)

    def fingerprint(self, root: Path) -> str:
        return f"text-{self.source.fingerprint(root)}"

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list[str], int]:
        examples, skipped = self.source.load(split, root, on_error)
        return [text.replace("\n", " ") for text, _ in examples], skipped


MODES = ("stream", "sentences")


class StreamChunks(Dataset[dict[str, torch.Tensor]]):
    """A split's token stream as ``StreamBatcher`` chunks with what the metrics need:
    ``{"input": (B, T), "target": (B, T), "characters": (), "probe": (B, T) bool}``.

    ``characters`` is the text the targets stand for: B*T tokens times the split's characters
    per token (exactly B*T for a character tokenizer), so summing it over batches gives the
    characters behind the predicted tokens and bits per character compare across tokenizers.
    ``probe`` (only where the data defines one) marks the targets the probe metric scores.
    """

    def __init__(self, ids: torch.Tensor, probe: torch.Tensor | None, characters_per_token: float,
                 batch_size: int, seq_len: int, num_replicas: int = 1, rank: int = 0) -> None:
        self.ids = StreamBatcher(ids, batch_size, seq_len, num_replicas=num_replicas, rank=rank)
        # The mask cut exactly like the ids: its "targets" line up with the id targets.
        self.probe = None if probe is None else StreamBatcher(
            probe.long(), batch_size, seq_len, num_replicas=num_replicas, rank=rank)
        self.characters_per_token = characters_per_token

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_tokens(self) -> int:
        """The tokens predicted over all chunks (every position of every stream but the last)."""
        streams = self.ids.streams  # (B, L)
        return streams.size(0) * (streams.size(1) - 1)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        inputs, targets = self.ids[k]  # (B, T) each
        batch = {"input": inputs, "target": targets,
                 "characters": torch.tensor(targets.numel() * self.characters_per_token)}
        if self.probe is not None:
            batch["probe"] = self.probe[k][1].bool()  # (B, T)
        return batch


def _as_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch  # StreamChunks items are whole batches already


class SentenceCollate:
    """Collate examples ``(target, probe)`` (target: text tokens, then ``<eos>`` unless
    truncated; probe: a bool per target token, or None) into ``{"input": (B, T), "target":
    (B, T), "lengths": (B,), "characters": ()[, "probe": (B, T) bool]}``: the input is
    ``<bos>`` followed by the target without its last token, so position t of the input
    predicts position t of the target. Both are right-padded with ``<pad>`` (a loss should
    ignore ``pad_id``). ``characters``: real target tokens times ``characters_per_token``
    (see ``StreamChunks``)."""

    def __init__(self, bos_id: int, pad_id: int, characters_per_token: float = 1.0) -> None:
        self.bos_id, self.pad_id = bos_id, pad_id
        self.characters_per_token = characters_per_token

    def __call__(
        self, examples: Sequence[tuple[list[int], list[bool] | None]]
    ) -> dict[str, torch.Tensor]:
        targets = [ids for ids, _ in examples]
        target, lengths = pad_sequences(targets, self.pad_id)  # (B, T), (B,)
        inputs, _ = pad_sequences([[self.bos_id, *seq[:-1]] for seq in targets], self.pad_id)
        batch = {"input": inputs, "target": target, "lengths": lengths,
                 "characters": torch.tensor(float(lengths.sum()) * self.characters_per_token)}
        if all(probe is not None for _, probe in examples):
            probe, _ = pad_sequences([[int(p) for p in mask] for _, mask in examples], 0)
            batch["probe"] = probe.bool()  # (B, T)
        return batch


class GenerationDataModule(TextDataModule):
    """Serves next-token batches of int64 CPU tensors, in one of two modes.

    ``stream`` (default): a split's documents, joined by the source's ``separator``, form one
    token sequence, cut into B = ``batch_size`` parallel contiguous streams and served in order
    as ``{"input": (B, T), "target": (B, T)}`` with T = ``seq_len`` (the last batch may be
    shorter) and the target the input shifted by one token. Batch k+1 continues batch k in
    every row, so a model may carry its recurrent state across batches (truncated BPTT). There
    is no padding and no shuffling. Under DDP each rank gets B streams of its own (set
    Lightning's ``use_distributed_sampler=False``).

    ``sentences``: every non-empty document (a line of a text file, a story of the synthetic
    corpus) is an example: ``{"input": (B, T), "target": (B, T), "lengths": (B,)}``, input
    ``<bos> text``, target ``text <eos>``, right-padded with ``<pad>``, in length-bucketed batches
    of at most ``batch_size`` examples and ``max_tokens`` positions. A target longer than
    ``max_length`` is truncated (counted in ``truncated``) and then ends in text, not ``<eos>``.

    The source is a ``Source`` whose ``load`` gives a split's documents as strings and whose
    ``separator`` joins them into the split's text. The tokenizer (default: characters, cased)
    learns from the training split only.

    Args:
        source: the text source (``SyntheticText``, ``TinyShakespeare``, ``TextFiles``).
        tokenizer: how to train the tokenizer; None: character level, cased.
        mode: ``stream`` or ``sentences``.
        seq_len: T of the stream mode, time steps per batch.
        reverse: serve the text right to left (the stream's tokens, or each sentence's, in
            reverse order), to train the backward language model of a biLM.
        The other arguments are those of ``TextDataModule``; of ``loader``, ``max_tokens``,
        ``max_length`` and ``truncation`` apply to the sentences mode only.
    """

    task = "generation"

    def __init__(
        self,
        source: Source,
        tokenizer: TokenizerTrainer | None = None,
        mode: str = "stream",
        seq_len: int = 128,
        reverse: bool = False,
        root: str | None = None,
        cache_dir: str | None = None,
        trained_tokenizer: str | None = None,
        loader: LoaderOptions | Mapping[str, Any] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if seq_len < 1:
            raise ValueError(f"seq_len must be positive, got {seq_len}")
        super().__init__(
            source, tokenizer or TokenizerTrainer(kind="char", lowercase=False, vocab_size=None),
            root=root, cache_dir=cache_dir, trained_tokenizer=trained_tokenizer, loader=loader,
        )
        if mode == "stream" and self.options.batch_size is None:
            raise ValueError("the stream mode needs data.loader.batch_size (the number of "
                             "streams)")
        self.mode, self.seq_len, self.reverse = mode, seq_len, reverse

    @property
    def separator(self) -> str:
        return self.source.separator

    def tokenizer_texts(self) -> Iterable[str]:
        # Each document with its separator, so the tokenizer also learns the separator's units
        # (a newline is a character of the stream).
        return [doc + self.separator for doc in self._examples("train")]

    # ------------------------------------------------------------ encoding
    def stream(self, split: str) -> torch.Tensor:
        """The split's text as one token sequence (N,), tokenized once and cached."""
        if self.tokenizer is None:
            self.setup()
        key = f"stream:{split}"
        if key not in self._encoded:
            separator = self.tokenizer.encode(self.separator)
            ids: list[int] = []
            for i, doc in enumerate(self.tokenizer.encode_batch(self._examples(split))):
                if i:
                    ids.extend(separator)
                ids.extend(doc)
            stream = torch.tensor(ids, dtype=torch.int64)  # (N,)
            self._encoded[key] = stream.flip(0) if self.reverse else stream
        return self._encoded[key]

    def probe_masks(self, split: str) -> list[list[bool]] | None:
        """Per document of the split, a bool per token: True where the token is scored by the
        probe metric. Only for sources that define probe character spans (``SyntheticText``)
        read with a character tokenizer (one token per character); None otherwise."""
        if not hasattr(self.source, "probe_spans"):
            return None
        if self.tokenizer is None:
            self.setup()
        key = f"probe:{split}"
        if key not in self._encoded:
            docs = self._examples(split)
            encoded = self.tokenizer.encode_batch(docs)
            if any(len(ids) != len(doc) for ids, doc in zip(encoded, docs, strict=True)):
                self._encoded[key] = None  # not one token per character: no probe
            else:
                masks = []
                for doc, spans in zip(docs, self.source.probe_spans(split), strict=True):
                    mask = [False] * len(doc)
                    for start, stop in spans:
                        mask[start:stop] = [True] * (stop - start)
                    masks.append(mask)
                self._encoded[key] = masks
        return self._encoded[key]

    def probe_stream(self, split: str) -> torch.Tensor | None:
        """``probe_masks`` aligned with ``stream(split)``: (N,) bool, or None."""
        masks = self.probe_masks(split)
        if masks is None:
            return None
        separator = [False] * len(self.tokenizer.encode(self.separator))
        flat: list[bool] = []
        for i, mask in enumerate(masks):
            if i:
                flat.extend(separator)
            flat.extend(mask)
        probe = torch.tensor(flat, dtype=torch.bool)  # (N,)
        return probe.flip(0) if self.reverse else probe

    def characters(self, split: str) -> int:
        """The characters of the split's text (documents joined by the separator) as the
        tokenizer's normaliser leaves them (e.g. without the HTML line breaks it removes)."""
        docs = self._examples(split)
        normalizer = self.tokenizer.backend.normalizer
        if normalizer is not None:
            docs = [normalizer.normalize_str(doc) for doc in docs]
        return sum(map(len, docs)) + len(self.separator) * (len(docs) - 1)

    def characters_per_token(self, split: str) -> float:
        """The split's ``characters`` per served token."""
        if self.tokenizer is None:
            self.setup()
        characters = self.characters(split)
        if self.mode == "stream":
            tokens = self.stream(split).numel()
        else:
            tokens = sum(len(ids) for ids in self.sentences(split))
        return characters / max(tokens, 1)

    def sentences(self, split: str) -> list[list[int]]:
        """The targets of a split's examples (text tokens, then ``<eos>``), truncated to
        ``max_length``; tokenized once and cached."""
        if self.tokenizer is None:
            self.setup()
        key = f"sentences:{split}"
        if key not in self._encoded:
            docs = [doc for doc in self._examples(split) if doc.strip()]
            self._encoded[key] = [self.guard([*(ids[::-1] if self.reverse else ids),
                                              self.tokenizer.eos_id])
                                  for ids in self.tokenizer.encode_batch(docs)]
        return self._encoded[key]

    # ------------------------------------------------------------- batches
    def dataloader(self, split: str, *, shuffle: bool = False) -> DataLoader:
        """Batches of a split; ``shuffle`` applies to the sentences mode only (streams keep
        their order)."""
        if self.mode == "stream":
            replicas, rank = self._shard()
            chunks = StreamChunks(self.stream(split), self.probe_stream(split),
                                  self.characters_per_token(split), self.options.batch_size,
                                  self.seq_len, num_replicas=replicas, rank=rank)
            return self.loader(chunks, _as_batch)
        data = self.sentences(split)
        masks = self.probe_masks(split)
        if masks is not None:  # the documents sentences() keeps, cut like their targets
            masks = [mask for mask, doc in zip(masks, self._examples(split), strict=True)
                     if doc.strip()]
        # A target is the document's tokens and <eos> (unscored), truncated like the target.
        if masks is not None and self.reverse:
            masks = [mask[::-1] for mask in masks]
        examples = [(ids, None if masks is None else (masks[i] + [False])[: len(ids)])
                    for i, ids in enumerate(data)]
        collate = SentenceCollate(self.tokenizer.bos_id, self.tokenizer.pad_id,
                                  self.characters_per_token(split))
        return self.loader(examples, collate,
                           self.batch_sampler([len(ids) for ids in data], shuffle=shuffle))

    def evaluation_size(self, loader: DataLoader) -> tuple[str, int]:
        """Streams count the tokens predicted (a stream is no set of examples); sentences
        count examples."""
        if isinstance(loader.dataset, StreamChunks):
            return "tokens", loader.dataset.num_tokens
        return super().evaluation_size(loader)

    # ---------------------------------------------------------- statistics
    def statistics(self) -> dict[str, Any]:
        """Per split: ``examples``, the non-empty documents (in both modes); ``tokens``, the
        positions served (stream: the stream's length; sentences: the targets' tokens, text and
        ``<eos>``, after truncation); ``characters``, the split's text (documents joined by the
        separator). ``padding_waste`` is 0.0 for streams, which have no padding."""
        splits = {}
        for split in self.splits:
            docs = self._examples(split)
            if self.mode == "stream":
                tokens = self.stream(split).numel()
            else:
                tokens = sum(len(ids) for ids in self.sentences(split))
            splits[split] = {
                "examples": sum(1 for doc in docs if doc.strip()),
                "tokens": tokens,
                "characters": self.characters(split),
            }
            if self.skipped.get(split):
                splits[split]["skipped"] = self.skipped[split]
        waste = 0.0
        if self.mode == "sentences":
            lengths = [len(ids) for ids in self.sentences("train")]
            waste = padding_waste(list(self.batch_sampler(lengths, shuffle=True)), lengths)
        return {"splits": splits, "vocab_size": self.tokenizer.vocab_size,
                "padding_waste": waste}
