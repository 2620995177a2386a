"""Downloads against a local HTTP server: atomicity, checksums, dropped connections, zips."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from conftest import HTTPFiles as _Server

from nlp_lstm.data.download import (
    DownloadError,
    RemoteFile,
    download,
    ensure_file,
    fetch,
    require,
)
from nlp_lstm.data.errors import DataError
from nlp_lstm.generation.data import SHAKESPEARE_FILES
from nlp_lstm.sentiment.data import SST2_FILES
from nlp_lstm.translation.data import MULTI30K_FILES

PAYLOAD = b"hello world\n" * 5000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_good_file_with_checksum_lands(server: _Server, tmp_path: Path) -> None:
    server.files["/a.txt"] = PAYLOAD
    dest = tmp_path / "sub" / "a.txt"
    assert download(server.url("/a.txt"), dest, _sha(PAYLOAD), progress=True) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.txt"]


def test_wrong_checksum_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.files["/a.txt"] = PAYLOAD
    dest = tmp_path / "a.txt"
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        download(server.url("/a.txt"), dest, "0" * 64)
    assert server.url("/a.txt") in str(info.value) and str(dest) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_connection_dropped_half_way_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.files["/a.txt"] = PAYLOAD
    server.truncated.add("/a.txt")
    dest = tmp_path / "a.txt"
    with pytest.raises(DownloadError) as info:
        download(server.url("/a.txt"), dest)
    message = str(info.value)
    assert server.url("/a.txt") in message and str(dest) in message
    assert "set data.root (or $NLP_LSTM_DATA)" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_chunked_response_cut_short_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.files["/a.txt"] = PAYLOAD
    server.chunked_truncated.add("/a.txt")
    with pytest.raises(DownloadError, match="connection dropped"):
        download(server.url("/a.txt"), tmp_path / "a.txt")
    assert list(tmp_path.iterdir()) == []


def test_404_names_the_url(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "missing.txt"
    with pytest.raises(DownloadError, match="404") as info:
        download(server.url("/missing.txt"), dest)
    assert server.url("/missing.txt") in str(info.value)
    assert "place the file there yourself" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_refused_connection_is_a_download_error(tmp_path: Path) -> None:
    # Port 1 on localhost: nothing listens there.
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:1/x"):
        download("http://127.0.0.1:1/x", tmp_path / "x", timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_malformed_url_is_a_download_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="invalid URL"):
        download("htp//nowhere", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_an_existing_destination(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.txt"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError):
        download(server.url("/nope"), dest)
    assert dest.read_bytes() == b"old"


def test_download_is_silent_when_stderr_is_not_a_tty(
    server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files["/a.txt"] = PAYLOAD
    download(server.url("/a.txt"), tmp_path / "a.txt", progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_on_a_terminal(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    server.files["/a.txt"] = PAYLOAD
    download(server.url("/a.txt"), tmp_path / "a.txt", progress=True)
    assert (tmp_path / "a.txt").read_bytes() == PAYLOAD
    assert terminal.getvalue() != ""


def _sst2_zip(dev: bytes, train: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("SST-2/train.tsv", train)
        zf.writestr("SST-2/dev.tsv", dev)
        zf.writestr("SST-2/test.tsv", b"index\tsentence\n0\tfine .\n")
    return buffer.getvalue()


def test_zip_member_extraction_reuses_the_archive(server: _Server, tmp_path: Path) -> None:
    dev = b"sentence\tlabel\ngood .\t1\n"
    train = b"sentence\tlabel\nbad\t0\nnice\t1\n"
    server.files["/glue/SST-2.zip"] = _sst2_zip(dev, train)
    url = server.url("/glue/SST-2.zip")
    sources = {
        "sst2/dev.tsv": RemoteFile(url, _sha(dev), "SST-2/dev.tsv"),
        "sst2/train.tsv": {"url": url, "member": "SST-2/train.tsv"},  # config-style mapping
    }
    assert fetch(tmp_path, "sst2/dev.tsv", sources=sources).read_bytes() == dev
    assert fetch(tmp_path, "sst2/train.tsv", sources=sources).read_bytes() == train
    assert server.hits["/glue/SST-2.zip"] == 1
    assert sorted(p.name for p in (tmp_path / "sst2").iterdir()) == [
        "SST-2.zip",
        "dev.tsv",
        "train.tsv",
    ]


def test_zip_member_with_wrong_checksum_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.files["/SST-2.zip"] = _sst2_zip(b"a\t1\n", b"b\t0\n")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        ensure_file(
            tmp_path, "sst2/dev.tsv", server.url("/SST-2.zip"), "0" * 64, member="SST-2/dev.tsv"
        )
    assert list((tmp_path / "sst2").iterdir()) == []


def test_zip_without_the_member_lists_what_it_has(server: _Server, tmp_path: Path) -> None:
    server.files["/SST-2.zip"] = _sst2_zip(b"a\t1\n", b"b\t0\n")
    with pytest.raises(DataError, match=r"no member 'SST-2/nope.tsv'.*SST-2/dev.tsv"):
        ensure_file(tmp_path, "sst2/x.tsv", server.url("/SST-2.zip"), None, member="SST-2/nope.tsv")
    assert not (tmp_path / "sst2" / "x.tsv").exists()


def test_corrupt_zip_is_removed(server: _Server, tmp_path: Path) -> None:
    server.files["/SST-2.zip"] = b"this is not a zip file"
    with pytest.raises(DownloadError, match="not a valid zip"):
        ensure_file(
            tmp_path, "sst2/dev.tsv", server.url("/SST-2.zip"), None, member="SST-2/dev.tsv"
        )
    assert list((tmp_path / "sst2").iterdir()) == []


def test_present_file_is_not_downloaded_again(server: _Server, tmp_path: Path) -> None:
    server.files["/a.txt"] = PAYLOAD
    url = server.url("/a.txt")
    first = ensure_file(tmp_path, "x/a.txt", url, _sha(PAYLOAD))
    second = ensure_file(tmp_path, "x/a.txt", url, _sha(PAYLOAD))
    assert first == second == tmp_path / "x" / "a.txt"
    assert server.hits["/a.txt"] == 1


def test_missing_file_without_url_explains_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mine\.txt not found.*NLP_LSTM_DATA"):
        fetch(tmp_path, "mine.txt", sources={})


def test_require_downloads_only_when_allowed(server: _Server, tmp_path: Path) -> None:
    server.files["/a.txt"] = PAYLOAD
    sources = {"x/a.txt": RemoteFile(server.url("/a.txt"), _sha(PAYLOAD))}
    with pytest.raises(DataError, match=r"a\.txt is missing and data.source.download is false; "
                                        r"place the file there"):
        require(tmp_path, "x/a.txt", sources=sources, download=False, what="the file")
    assert server.hits["/a.txt"] == 0
    path = require(tmp_path, "x/a.txt", sources=sources, download=True, what="the file")
    assert path.read_bytes() == PAYLOAD and server.hits["/a.txt"] == 1


def test_canonical_sources_cover_the_data_root_layout() -> None:
    assert SST2_FILES["sst2/train.tsv"].sha256 is None  # GLUE's row order differs from ours
    assert SST2_FILES["sst2/dev.tsv"].member == "SST-2/dev.tsv"
    assert SST2_FILES["sst2/train.tsv"].url.endswith("/glue/data/SST-2.zip")
    assert SHAKESPEARE_FILES["tinyshakespeare/input.txt"].url.startswith(
        "https://raw.githubusercontent.com/karpathy/char-rnn/"
    )
    for split in ("train", "val"):
        for lang in ("en", "de", "fr", "cs"):
            source = MULTI30K_FILES[f"multi30k/{split}.{lang}.gz"]
            assert source.url.endswith(f"/data/task1/raw/{split}.{lang}.gz")
            assert source.sha256 is not None and len(source.sha256) == 64
