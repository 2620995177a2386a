"""Readers on small files made here, plus real-data checks under $NLP_LSTM_DATA."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from nlp_lstm.data.errors import DataError
from nlp_lstm.data.readers import read_labeled_tsv, read_parallel, read_sst2, read_text
from nlp_lstm.generation.data import split_tinyshakespeare
from nlp_lstm.translation.data import multi30k_paths


def _write(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# --- SST-2 -------------------------------------------------------------------------------


def test_sst2_reads_glue_format_in_any_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "train.tsv",
        b'sentence\tlabel\nhide new secretions \t0\nit \'s a "charming" journey . \t1\n',
    )
    assert read_sst2(path) == [("hide new secretions", 0), ('it \'s a "charming" journey .', 1)]


def test_sst2_handles_crlf_and_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "dev.tsv", b"\xef\xbb\xbfsentence\tlabel\r\ngood\t1\r\n")
    assert read_sst2(path) == [("good", 1)]


def test_sst2_rejects_a_wrong_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.tsv", b"index\tsentence\n0\tgood\n")
    with pytest.raises(DataError, match=r"test\.tsv, line 1: expected the header"):
        read_sst2(path)


def test_sst2_rejects_a_bad_label(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.tsv", b"sentence\tlabel\ngood\t1\nbad\tneg\n")
    with pytest.raises(DataError, match=r"train\.tsv, line 3: label 'neg'"):
        read_sst2(path)


def test_sst2_rejects_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty file"):
        read_sst2(_write(tmp_path / "train.tsv", b""))


# --- labeled tsv -------------------------------------------------------------------------


def test_labeled_tsv_any_labels_header_detected(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.tsv", b"text\tlabel\nI loved it\tpos\nmeh\tneutral\n")
    assert read_labeled_tsv(path) == ([("I loved it", "pos"), ("meh", "neutral")], 0)


def test_labeled_tsv_without_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.tsv", b"I loved it\tpos\n\nmeh\tneutral\n")
    assert read_labeled_tsv(path) == ([("I loved it", "pos"), ("meh", "neutral")], 0)
    # Forced header: the first row is dropped even though it does not say "label".
    assert read_labeled_tsv(path, header=True) == ([("meh", "neutral")], 0)


def test_labeled_tsv_forced_no_header_keeps_a_label_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.tsv", b"a text\tlabel\nb\tx\n")
    assert read_labeled_tsv(path, header=False) == ([("a text", "label"), ("b", "x")], 0)


def test_labeled_tsv_gzip(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.tsv.gz", "Über\tja\n".encode())
    assert read_labeled_tsv(path) == ([("Über", "ja")], 0)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"no tab here", "no tab"),
        (b"   \tpos", "empty text"),
        (b"text\t ", "empty label"),
        (b"caf\xe9\tpos", "invalid UTF-8"),
    ],
)
def test_labeled_tsv_bad_line_names_file_and_line(
    tmp_path: Path, line: bytes, problem: str
) -> None:
    path = _write(tmp_path / "mine.tsv", b"text\tlabel\ngood\tpos\n" + line + b"\nok\tneg\n")
    with pytest.raises(DataError, match=rf"mine\.tsv, line 3: {problem}"):
        read_labeled_tsv(path)
    assert read_labeled_tsv(path, on_error="skip") == ([("good", "pos"), ("ok", "neg")], 1)


def test_labeled_tsv_invalid_utf8_line_number_is_exact(tmp_path: Path) -> None:
    # Bytes before the bad one are valid multi-byte UTF-8: a whole-file decode would
    # still find line 4, but only per-line decoding lets "skip" keep the others.
    data = "é\tx\nü\ty\nß\tz\n".encode() + b"\xff\tw\n" + "ñ\tv\n".encode()
    path = _write(tmp_path / "mine.tsv", data)
    with pytest.raises(DataError, match=r"line 4: invalid UTF-8 \(byte 0xff at column 1\)"):
        read_labeled_tsv(path)
    rows, skipped = read_labeled_tsv(path, on_error="skip")
    assert [t for t, _ in rows] == ["é", "ü", "ß", "ñ"] and skipped == 1


def test_labeled_tsv_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mine\.tsv: empty file"):
        read_labeled_tsv(_write(tmp_path / "mine.tsv", b"\n\n"))


def test_labeled_tsv_all_rows_bad(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.tsv", b"x\ny\n")
    with pytest.raises(DataError, match=r"no valid rows \(2 skipped\)"):
        read_labeled_tsv(path, on_error="skip")


def test_labeled_tsv_rejects_unknown_on_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        read_labeled_tsv(_write(tmp_path / "mine.tsv", b"a\tb\n"), on_error="ignore")  # type: ignore[arg-type]


# --- parallel ----------------------------------------------------------------------------


def test_parallel_plain_and_gzip(tmp_path: Path) -> None:
    src = _write(tmp_path / "train.de.gz", b"Ein Hund .\nZwei Katzen\n")
    tgt = _write(tmp_path / "train.en", b"A dog .\nTwo cats \n")
    assert read_parallel(src, tgt) == ([("Ein Hund .", "A dog ."), ("Zwei Katzen", "Two cats")], 0)


def test_parallel_different_lengths_name_both_files(tmp_path: Path) -> None:
    src = _write(tmp_path / "a.de", b"1\n2\n3\n")
    tgt = _write(tmp_path / "a.en", b"1\n2\n")
    for on_error in ("raise", "skip"):
        with pytest.raises(DataError, match=r"a\.de has 3 lines but .*a\.en has 2"):
            read_parallel(src, tgt, on_error=on_error)  # type: ignore[arg-type]


@pytest.mark.parametrize("side", ["src", "tgt"])
def test_parallel_empty_line_raises_or_skips(tmp_path: Path, side: str) -> None:
    lines = {"src": b"a\nb\nc\n", "tgt": b"A\nB\nC\n"}
    lines[side] = lines[side].replace(b"b", b"  ").replace(b"B", b"  ")
    src = _write(tmp_path / "x.de", lines["src"])
    tgt = _write(tmp_path / "x.en", lines["tgt"])
    name = "x.de" if side == "src" else "x.en"
    with pytest.raises(DataError, match=rf"{name}, line 2: empty line"):
        read_parallel(src, tgt)
    assert read_parallel(src, tgt, on_error="skip") == ([("a", "A"), ("c", "C")], 1)


def test_parallel_invalid_utf8(tmp_path: Path) -> None:
    src = _write(tmp_path / "x.de", b"a\n\xc3\x28\n")
    tgt = _write(tmp_path / "x.en", b"A\nB\n")
    with pytest.raises(DataError, match=r"x\.de, line 2: invalid UTF-8"):
        read_parallel(src, tgt)


def test_parallel_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty files"):
        read_parallel(_write(tmp_path / "x.de", b""), _write(tmp_path / "x.en", b""))


def test_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    good = gzip.compress(b"line\n" * 1000)
    bad = tmp_path / "x.de.gz"
    bad.write_bytes(good[: len(good) // 2])
    tgt = _write(tmp_path / "x.en", b"line\n" * 1000)
    with pytest.raises(DataError, match=r"x\.de\.gz, line \d+: corrupt gzip"):
        read_parallel(bad, tgt)
    with pytest.raises(DataError, match=r"x\.de\.gz: corrupt gzip"):
        read_text(bad)


# --- text --------------------------------------------------------------------------------


def test_read_text_plain_and_gzip(tmp_path: Path) -> None:
    text = "First Citizen:\nBefore we proceed,\n"
    assert read_text(_write(tmp_path / "a.txt", text.encode())) == text
    assert read_text(_write(tmp_path / "a.txt.gz", text.encode())) == text


def test_read_text_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", "ok\nnoch ok ä\nab\x80c\n".encode("latin-1"))
    # "ä" in latin-1 is itself invalid UTF-8, on line 2.
    with pytest.raises(DataError, match=r"a\.txt, line 2: invalid UTF-8 \(byte 0xe4 at column 9\)"):
        read_text(path)


def test_read_text_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"a\.txt: empty file"):
        read_text(_write(tmp_path / "a.txt", b""))


# --- Multi30k paths ----------------------------------------------------------------------


def test_multi30k_paths_gz_or_plain_any_split(tmp_path: Path) -> None:
    folder = tmp_path / "multi30k"
    folder.mkdir()
    for name in ("train.de.gz", "train.en.gz", "test_2016_flickr.fr", "test_2016_flickr.en.gz"):
        (folder / name).write_bytes(b"")
    assert multi30k_paths(tmp_path, "train", "de", "en") == (
        folder / "train.de.gz",
        folder / "train.en.gz",
    )
    assert multi30k_paths(tmp_path, "test_2016_flickr", "fr", "en") == (
        folder / "test_2016_flickr.fr",
        folder / "test_2016_flickr.en.gz",
    )


def test_multi30k_missing_split_lists_the_splits(tmp_path: Path) -> None:
    folder = tmp_path / "multi30k"
    folder.mkdir()
    for name in ("train.de.gz", "train.en.gz", "val.de.gz", "val.en.gz"):
        (folder / name).write_bytes(b"")
    with pytest.raises(
        DataError, match=r"test_2016_flickr\.de\.gz.*train \(de en\), val \(de en\)"
    ):
        multi30k_paths(tmp_path, "test_2016_flickr", "de", "en")
    with pytest.raises(DataError, match=r"train\.cs\.gz"):
        multi30k_paths(tmp_path, "train", "cs", "en")


def test_multi30k_missing_folder_and_bad_language(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        multi30k_paths(tmp_path, "train", "de", "en")
    with pytest.raises(DataError, match="unknown Multi30k language 'es'"):
        multi30k_paths(tmp_path, "train", "es", "en")


# --- Tiny Shakespeare --------------------------------------------------------------------


def test_split_tinyshakespeare_is_nanogpts() -> None:
    text = "abcdefghij" * 11 + "xyz"  # 113 characters
    train, val = split_tinyshakespeare(text)
    assert len(train) == int(113 * 0.9) == 101 and train + val == text


# --- real data ---------------------------------------------------------------------------

REAL = os.environ.get("NLP_LSTM_DATA")


@pytest.mark.parametrize(("split", "count"), [("train", 67_349), ("dev", 872)])
@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="set NLP_LSTM_DATA to the data root")
def test_real_sst2(split: str, count: int) -> None:
    rows = read_sst2(Path(REAL or "") / "sst2" / f"{split}.tsv")
    assert len(rows) == count
    assert {label for _, label in rows} == {0, 1}


@pytest.mark.parametrize(("split", "count"), [("train", 29_000), ("val", 1_014)])
@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="set NLP_LSTM_DATA to the data root")
def test_real_multi30k(split: str, count: int) -> None:
    src, tgt = multi30k_paths(Path(REAL or ""), split, "de", "en")
    pairs, skipped = read_parallel(src, tgt)
    assert len(pairs) == count and skipped == 0


@pytest.mark.realdata
@pytest.mark.skipif(not REAL, reason="set NLP_LSTM_DATA to the data root")
def test_real_tinyshakespeare() -> None:
    text = read_text(Path(REAL or "") / "tinyshakespeare" / "input.txt")
    train, val = split_tinyshakespeare(text)
    assert (len(train), len(val)) == (1_003_854, 111_540)
    assert len(set(text)) == 65
