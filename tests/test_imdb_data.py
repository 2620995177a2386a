"""IMDB as a sentiment source (fake files under a tmp root; one test reads the real ones) and
the length guard's truncation policies."""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path

import pytest
from hydra.utils import instantiate

from nlp_lstm.core.cli import compose_config
from nlp_lstm.data.errors import DataError
from nlp_lstm.data.guard import LengthGuard
from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.sentiment import IMDB, SentimentDataModule


def _reviews(pairs: int, first_id: int = 0) -> list[tuple[str, int]]:
    """Rows ordered by (id, label) as in the shared file: each id a negative then a positive."""
    rows = []
    for i in range(first_id, first_id + pairs):
        rows.append((f"review {i} was dull<br /><br />and slow , boring {i}", 0))
        rows.append((f"review {i} was great<br />a gem , wonderful {i}", 1))
    return rows


def _write(path: Path, rows: list[tuple[str, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    _write(tmp_path / "imdb/train.tsv.gz", _reviews(20))  # 40 rows
    return tmp_path


def test_splits_sizes_balance_and_raw_text(root: Path):
    source = IMDB(val_size=10)
    source.prepare(root)
    assert source.splits == ("train", "val") and source.labels == ("negative", "positive")
    train, skipped = source.load("train", root)
    val, _ = source.load("val", root)
    assert (len(train), len(val), skipped) == (30, 10, 0)
    assert Counter(label for _, label in val) == {0: 5, 1: 5}
    assert train[0] == ("review 0 was dull<br /><br />and slow , boring 0", 0)  # markup kept
    assert val[-1] == ("review 19 was great<br />a gem , wonderful 19", 1)
    assert not {t for t, _ in train} & {t for t, _ in val}


def test_fingerprint_follows_val_size(root: Path):
    assert IMDB(val_size=10).fingerprint(root) == IMDB(val_size=10).fingerprint(root)
    assert IMDB(val_size=10).fingerprint(root) != IMDB(val_size=12).fingerprint(root)


@pytest.mark.parametrize("val_size", [0, -2, 7, 25_000, 30_000])
def test_bad_val_size_is_refused(val_size: int):
    with pytest.raises(ValueError, match=f"val_size.*got {val_size}"):
        IMDB(val_size=val_size)


def test_val_size_beyond_the_file_names_it(root: Path):
    with pytest.raises(DataError, match="val_size=40"):
        IMDB(val_size=40).load("train", root)


def test_missing_train_file_names_path_and_readme(tmp_path: Path):
    with pytest.raises(DataError, match=r"imdb/train\.tsv\.gz.*README"):
        IMDB().prepare(tmp_path)


@pytest.mark.parametrize("name", ["test.tsv.gz", "test.tsv"])
def test_test_split_found_under_the_root(root: Path, name: str):
    _write(root / "imdb" / name, _reviews(3, first_id=100))
    source = IMDB(val_size=10)
    assert source.any_split and "test" not in source.splits  # served on demand (eval)
    test, _ = source.load("test", root)
    assert len(test) == 6 and test[0][0].startswith("review 100")


def test_test_split_given_as_path_absolute_or_under_the_root(root: Path, tmp_path: Path):
    _write(root / "extra/imdb_test.tsv", _reviews(2, first_id=200))
    for given in (str(root / "extra/imdb_test.tsv"), "extra/imdb_test.tsv"):
        source = IMDB(val_size=10, test=given)
        source.prepare(root)
        assert source.splits == ("train", "val", "test")
        assert len(source.load("test", root)[0]) == 4


def test_missing_test_split_names_the_paths(root: Path):
    with pytest.raises(DataError, match=r"imdb/test\.tsv\.gz or .*imdb/test\.tsv"):
        IMDB(val_size=10).load("test", root)
    with pytest.raises(DataError, match=r"nowhere\.tsv"):
        IMDB(val_size=10, test="nowhere.tsv").prepare(root)


def test_bad_label_raises_or_is_skipped(root: Path):
    _write(root / "imdb/test.tsv", [("fine film", 1), ("odd row", 7)])
    with pytest.raises(DataError, match="label '7'"):
        IMDB(val_size=10).load("test", root)
    rows, skipped = IMDB(val_size=10).load("test", root, on_error="skip")
    assert rows == [("fine film", 1)] and skipped == 1


# ------------------------------------------------------------------ length guard policies
def test_guard_head_keeps_the_first_ids():
    guard = LengthGuard(8)
    assert guard(list(range(8))) == list(range(8))
    assert guard(list(range(20))) == list(range(8))
    assert guard.truncated == 1


def test_guard_head_tail_keeps_a_quarter_from_the_start_and_the_rest_from_the_end():
    guard = LengthGuard(8, "head_tail")
    assert guard(list(range(8))) == list(range(8))  # not over: untouched, not counted
    assert guard(list(range(20))) == [0, 1, 14, 15, 16, 17, 18, 19]
    assert guard(list(range(9))) == [0, 1, 3, 4, 5, 6, 7, 8]
    assert guard.truncated == 2
    assert LengthGuard(400, "head_tail")(list(range(1000))) == [*range(100), *range(700, 1000)]
    assert LengthGuard(1, "head_tail")([1, 2, 3]) == [3]  # max_length < 4: the tail only


def test_guard_refuses_an_unknown_policy():
    with pytest.raises(ValueError, match=r"one of \('head', 'head_tail'\), got 'middle'"):
        LengthGuard(8, "middle")


def test_datamodule_refuses_an_unknown_truncation(root: Path):
    with pytest.raises(ValueError, match="'tail'"):
        SentimentDataModule(IMDB(val_size=10), root=str(root),
                            loader=LoaderOptions(truncation="tail"))


def test_datamodule_builds_head_tail_batches(root: Path):
    dm = SentimentDataModule(IMDB(val_size=10), root=str(root),
                             loader=LoaderOptions(batch_size=4, max_length=4,
                                                  truncation="head_tail"))
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["tokens"].shape[0] == 4 and int(batch["lengths"].max()) == 4
    # Every review is longer than 4 tokens: each keeps its first token and its last three.
    text, _ = dm.source.load("val", root)[0][0]
    encoded = dm.tokenizer.encode(text)
    assert dm.dataset("val")[0][0] == [encoded[0], *encoded[-3:]]
    assert dm.truncated == 30 + 10
    assert len(list(dm.val_dataloader())) == 3


def test_config_composes_for_train_and_eval(tmp_path: Path):
    common = [f"paths.data_dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache"]
    cfg = compose_config("train", ["task=sentiment", "data=imdb", *common])
    dm = instantiate(cfg.data)
    assert isinstance(dm.source, IMDB) and dm.source.val_size == 2500
    assert (dm.options.max_length, dm.options.truncation) == (400, "head_tail")
    assert (dm.guard.head, dm.guard.tail) == (100, 300)
    cfg = compose_config("eval", ["task=sentiment", "data=imdb", "split=test", "ckpt_path=x",
                                  "data.source.test=t.tsv.gz", *common])
    assert cfg.split == "test" and instantiate(cfg.data).source.splits[-1] == "test"


@pytest.mark.realdata
def test_real_imdb_split_sizes_and_balance():
    root = os.environ.get("NLP_LSTM_DATA")
    if not root or not (Path(root) / "imdb/train.tsv.gz").is_file():
        pytest.skip("set NLP_LSTM_DATA to a data root holding imdb/train.tsv.gz")
    source = IMDB()
    train, skipped = source.load("train", Path(root))
    val, _ = source.load("val", Path(root))
    assert (len(train), len(val), skipped) == (22_500, 2_500, 0)
    assert Counter(label for _, label in val) == {0: 1_250, 1: 1_250}
    assert Counter(label for _, label in train) == {0: 11_250, 1: 11_250}
    assert train[1][0].startswith("Bromwell High is a cartoon comedy.")
