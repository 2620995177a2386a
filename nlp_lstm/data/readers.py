"""Readers for the data sets' official file formats and the user's own files.

They return plain Python lists and strings; tokenizing and tensors happen elsewhere.
Files are read as bytes and decoded line by line, so an error names the right line
(and, with ``on_error="skip"``, one bad line costs one example, not the file).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from typing import IO, Literal

from nlp_lstm.data.errors import DataError

OnError = Literal["raise", "skip"]

_BOM = b"\xef\xbb\xbf"


def _open_bytes(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the line ending); a leading BOM is dropped."""
    lineno = 0
    try:
        with _open_bytes(path) as f:
            for lineno, raw in enumerate(f, start=1):
                line = raw.rstrip(b"\n").rstrip(b"\r")
                if lineno == 1 and line.startswith(_BOM):
                    line = line[len(_BOM) :]
                yield lineno, line
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}, line {lineno + 1}: corrupt gzip data ({err}); expected a complete .gz file"
        ) from err


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}, line {lineno}: invalid UTF-8 (byte 0x{raw[err.start]:02x} at column "
            f"{err.start + 1}); expected UTF-8 text"
        ) from None


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def _split_row(line: str, path: Path, lineno: int, expected: str) -> tuple[str, str]:
    """text, label of a ``text<TAB>label`` row; the label is after the last tab."""
    text, tab, label = line.rpartition("\t")
    if not tab:
        raise DataError(f"{path}, line {lineno}: no tab; expected {expected}")
    text, label = text.strip(), label.strip()
    if not text:
        raise DataError(f"{path}, line {lineno}: empty text; expected {expected}")
    if not label:
        raise DataError(f"{path}, line {lineno}: empty label; expected {expected}")
    return text, label


def read_sst2(path: Path | str) -> list[tuple[str, int]]:
    """GLUE SST-2 ``train.tsv`` / ``dev.tsv``: header ``sentence<TAB>label``, label 0 or 1.

    Rows may come in any order. Surrounding whitespace of a sentence is dropped (the GLUE
    phrases end with a space).

    Returns:
        (sentence, label) pairs in file order, label 1 = positive.
    """
    path = Path(path)
    expected = "'sentence<TAB>label' with label 0 or 1"
    rows: list[tuple[str, int]] = []
    lines = _raw_lines(path)
    first = next(lines, None)
    if first is None:
        raise DataError(
            f"{path}: empty file; expected an SST-2 tsv with header 'sentence<TAB>label'"
        )
    if _decode(first[1], path, 1).strip().split("\t") != ["sentence", "label"]:
        raise DataError(
            f"{path}, line 1: expected the header 'sentence<TAB>label' (GLUE SST-2 train/dev; "
            f"test.tsv has no labels), found {first[1][:60]!r}"
        )
    for lineno, raw in lines:
        if not raw.strip():
            continue
        text, label = _split_row(_decode(raw, path, lineno), path, lineno, expected)
        if label not in ("0", "1"):
            raise DataError(f"{path}, line {lineno}: label {label!r}; expected {expected}")
        rows.append((text, int(label)))
    if not rows:
        raise DataError(f"{path}: header only, no examples; expected {expected} rows")
    return rows


def read_labeled_tsv(
    path: Path | str, *, header: bool | None = None, on_error: OnError = "raise"
) -> tuple[list[tuple[str, str]], int]:
    """The user's own ``text<TAB>label`` file, any label names.

    Blank lines are ignored. The label is what follows the last tab, so a stray tab
    inside the text is kept in the text.

    Args:
        path: UTF-8 file, plain or ``.gz``.
        header: True: the first line is a header; False: it is data; None: it is a header
            when its last column is literally ``label``.
        on_error: "raise" on the first bad line, or "skip" bad lines and count them.

    Returns:
        ((text, label) rows in file order, number of skipped lines).

    Raises:
        DataError: empty file, no valid rows, or (with "raise") a line without a tab, with
            an empty text or label, or with invalid UTF-8; the message names file and line.
    """
    path = Path(path)
    _check_on_error(on_error)
    expected = "'text<TAB>label'"
    rows: list[tuple[str, str]] = []
    skipped = 0
    seen_first = False
    for lineno, raw in _raw_lines(path):
        if not raw.strip():
            continue
        first, seen_first = not seen_first, True
        try:
            line = _decode(raw, path, lineno)
            if first:
                is_header = line.split("\t")[-1].strip() == "label" if header is None else header
                if is_header:
                    continue
            rows.append(_split_row(line, path, lineno, expected))
        except DataError:
            if on_error == "raise":
                raise
            skipped += 1
    if not seen_first:
        raise DataError(f"{path}: empty file; expected {expected} lines")
    if not rows:
        raise DataError(f"{path}: no valid rows ({skipped} skipped); expected {expected} lines")
    return rows, skipped


def read_parallel(
    src_path: Path | str, tgt_path: Path | str, *, on_error: OnError = "raise"
) -> tuple[list[tuple[str, str]], int]:
    """Sentence pairs from two line-aligned files (plain or ``.gz``), e.g. Multi30k.

    Args:
        src_path: Source-language file, one sentence a line.
        tgt_path: Target-language file, aligned line by line with src_path.
        on_error: "raise" on the first bad pair (an empty side or invalid UTF-8), or
            "skip" bad pairs and count them.

    Returns:
        ((source, target) pairs with surrounding whitespace stripped, number skipped).

    Raises:
        DataError: the files have different line counts (always), both are empty, or
            (with "raise") a bad pair; messages name the file and line.
    """
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    _check_on_error(on_error)
    pairs: list[tuple[str, str]] = []
    skipped = n_src = n_tgt = 0
    for src_item, tgt_item in zip_longest(_raw_lines(src_path), _raw_lines(tgt_path)):
        n_src += src_item is not None
        n_tgt += tgt_item is not None
        if src_item is None or tgt_item is None:
            continue  # keep counting the longer file for the error below
        try:
            sides = []
            for path, (lineno, raw) in ((src_path, src_item), (tgt_path, tgt_item)):
                text = _decode(raw, path, lineno).strip()
                if not text:
                    raise DataError(f"{path}, line {lineno}: empty line; expected a sentence")
                sides.append(text)
            pairs.append((sides[0], sides[1]))
        except DataError:
            if on_error == "raise":
                raise
            skipped += 1
    if n_src != n_tgt:
        raise DataError(
            f"{src_path} has {n_src} lines but {tgt_path} has {n_tgt}; "
            f"expected line-aligned files of the same length"
        )
    if n_src == 0:
        raise DataError(f"{src_path} and {tgt_path}: empty files; expected one sentence a line")
    return pairs, skipped


def read_text(path: Path | str) -> str:
    """A whole UTF-8 text file (plain or ``.gz``), line endings kept, leading BOM dropped.

    Raises:
        DataError: empty file, or invalid UTF-8 (naming the line).
    """
    path = Path(path)
    try:
        with _open_bytes(path) as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip data ({err}); expected a complete .gz file") from err
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data:
        raise DataError(f"{path}: empty file; expected text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        lineno = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(
            f"{path}, line {lineno}: invalid UTF-8 (byte 0x{data[err.start]:02x} at column "
            f"{column}); expected UTF-8 text"
        ) from None
