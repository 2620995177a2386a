"""IMDB movie reviews (Maas et al., 2011) as a sentiment source: the labeled training reviews
under the data root, split into train and val; the official test split when the user has it.

The shared copy (``root/imdb``, described by ``shared/data/imdb/README.md``) holds
``train.tsv.gz``: a header ``sentence<TAB>label`` and the 25,000 labeled training reviews,
label 1 = positive, 0 = negative, rows ordered by (review id, label). Every id has one review
of each label, so any run of whole id pairs is balanced: the last ``val_size`` rows (even)
are the val split, the rest the train split. The text is kept raw, ``<br />`` markup included:
the tokenizer's normaliser maps it.
"""

from __future__ import annotations

from pathlib import Path

from nlp_lstm.data.base import file_fingerprint
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.readers import read_labeled_tsv

#: The labeled training reviews of the official release.
IMDB_TRAIN_SIZE = 25_000
#: Where an official test split is looked for under the data root, first match wins.
TEST_FILES = ("imdb/test.tsv.gz", "imdb/test.tsv")
_HOWTO = ("IMDB is not downloaded (the release is a tar of 100,000 files): put the labeled "
          "reviews there as 'sentence<TAB>label' rows, see the data README "
          "(shared/data/imdb/README.md)")


class IMDB:
    """IMDB reviews under ``root/imdb``: splits ``train`` (the first 25,000 - ``val_size``
    rows of ``train.tsv.gz``), ``val`` (the last ``val_size``, balanced) and, when there is
    one, ``test`` (the official test split, 25,000 reviews, not in the shared copy).

    ``any_split``: a ``test`` file found under the root is served too (e.g. by the eval
    command's ``split=test``), though ``splits`` cannot know of it: it is read before the root.

    Args:
        val_size: how many training reviews to hold out for validation; even, so that val
            has as many positive reviews as negative ones.
        test: the official test split as a ``sentence<TAB>label`` file (plain or .gz): a path,
            or one relative to the data root. None: ``root/imdb/test.tsv.gz`` or
            ``root/imdb/test.tsv`` if there is one.
    """

    labels: tuple[str, ...] = ("negative", "positive")
    any_split = True
    train_file = "imdb/train.tsv.gz"

    def __init__(self, val_size: int = 2500, test: str | None = None) -> None:
        # No I/O here: a config must instantiate without the data it points to.
        if (not isinstance(val_size, int) or val_size <= 0 or val_size % 2
                or val_size >= IMDB_TRAIN_SIZE):
            raise ValueError(f"val_size must be an even number in [2, {IMDB_TRAIN_SIZE - 2}] "
                             f"(val is balanced by whole review-id pairs), got {val_size!r}")
        self.val_size = val_size
        self.test = test or None

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test") if self.test else ("train", "val")

    # ---------------------------------------------------------------- files
    def _train(self, root: Path) -> Path:
        path = root / self.train_file
        if not path.is_file():
            raise DataError(f"IMDB training reviews not found: {path}. {_HOWTO}")
        return path

    def _test_candidates(self, root: Path) -> list[Path]:
        if self.test is None:
            return [root / name for name in TEST_FILES]
        given = Path(self.test).expanduser()
        return [given] if given.is_absolute() else [given, root / given]

    def _test(self, root: Path) -> Path:
        candidates = self._test_candidates(root)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            tried = " or ".join(str(p) for p in candidates)
            raise DataError(f"IMDB test split not found: {tried}. The shared copy has no test "
                            "split; with the official release, write its test reviews as "
                            "'sentence<TAB>label' rows there, or set data.source.test")
        return path

    # ------------------------------------------------------------- protocol
    def prepare(self, root: Path) -> None:
        """Checks the files exist (nothing is downloaded)."""
        self._train(root)
        if self.test:
            self._test(root)

    def fingerprint(self, root: Path) -> str:
        """The training file and ``val_size``: both decide the train split."""
        return f"{file_fingerprint(self._train(root))}-val{self.val_size}"

    def load(self, split: str, root: Path, on_error: str = "raise") -> tuple[list, int]:
        """``(review, label index)`` pairs of ``train``, ``val`` or ``test``, and how many
        malformed rows were skipped (``on_error="skip"``)."""
        if split == "test":
            return self._read(self._test(root), on_error)
        if split not in ("train", "val"):
            raise DataError(f"IMDB has no split {split!r}; expected train, val or test")
        rows, skipped = self._read(self._train(root), on_error)
        if len(rows) <= self.val_size:
            raise DataError(f"{root / self.train_file}: {len(rows)} reviews, not more than "
                            f"val_size={self.val_size}; expected {IMDB_TRAIN_SIZE}")
        cut = len(rows) - self.val_size
        return (rows[:cut] if split == "train" else rows[cut:]), skipped

    def _read(self, path: Path, on_error: str) -> tuple[list[tuple[str, int]], int]:
        rows, skipped = read_labeled_tsv(path, header=None, on_error=on_error)
        examples = []
        for text, label in rows:
            if label not in ("0", "1"):
                if on_error == "raise":
                    raise DataError(f"{path}: label {label!r}; expected 0 (negative) or "
                                    "1 (positive)")
                skipped += 1
                continue
            examples.append((text, int(label)))
        return examples, skipped
