"""Fetching data files from their canonical sources, atomically and verified.

A file appears at its destination only once it is complete (and matches its checksum
when one is known); any failure leaves the destination untouched and no temp file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nlp_lstm.data.errors import DataError
from nlp_lstm.data.readers import MULTI30K_LANGS

_HINT = "place the file there yourself or set data.root (or $NLP_LSTM_DATA) to a folder that has it"
_CHUNK = 1 << 16


class DownloadError(DataError):
    """A download failed or did not match its checksum; nothing was left behind."""


@dataclass(frozen=True)
class Source:
    """Where a file of the data root comes from.

    Attributes:
        url: Where to download it (or the zip archive that holds it).
        sha256: Expected checksum of the file itself, None when it is not stable.
        member: Path of the file inside the zip archive at ``url``; None for a plain file.
    """

    url: str
    sha256: str | None = None
    member: str | None = None


_GLUE_SST2 = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
_MULTI30K = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
_SHAKESPEARE = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)


def multi30k_url(split: str, lang: str) -> str:
    """Canonical URL of a Multi30k task 1 raw file, for any split name (e.g. test_2016_flickr)."""
    return f"{_MULTI30K}/{split}.{lang}.gz"


# Checksums of the files whose bytes are stable upstream (see the shared data README).
# GLUE's train.tsv is not pinned: the shared copy has the same rows in another order.
_MULTI30K_SHA256 = {
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
}

#: Canonical sources, keyed by path relative to the data root. Callers pass overrides
#: (e.g. from a config) to :func:`fetch` to point at mirrors instead of editing this.
SOURCES: dict[str, Source] = {
    "sst2/train.tsv": Source(_GLUE_SST2, None, "SST-2/train.tsv"),
    "sst2/dev.tsv": Source(
        _GLUE_SST2,
        "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
        "SST-2/dev.tsv",
    ),
    "tinyshakespeare/input.txt": Source(
        _SHAKESPEARE, "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    ),
    **{
        f"multi30k/{split}.{lang}.gz": Source(
            multi30k_url(split, lang), _MULTI30K_SHA256[f"{split}.{lang}.gz"]
        )
        for split in ("train", "val")
        for lang in MULTI30K_LANGS
    },
}


@contextmanager
def _temp_beside(dest: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A temp file in dest's folder (so os.replace is atomic), removed unless moved away."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out, tmp
    finally:
        tmp.unlink(missing_ok=True)  # no-op once os.replace has moved it


def _progress_bar(total: int | None, label: str, enabled: bool) -> Any:
    """A rich progress bar on an interactive stderr; None (silent) otherwise."""
    if not (enabled and sys.stderr.isatty()):
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
    bar.start()
    bar.add_task(label, total=total)
    return bar


def _stream(url: str, out: IO[bytes], dest: Path, *, progress: bool, timeout: float) -> str:
    """Copy url into out; return the sha256 hex digest. Network failures become DownloadError."""
    digest = hashlib.sha256()
    received = 0
    bar = None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "nlp-lstm"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            header = response.headers.get("Content-Length")
            expected = int(header) if header and header.isdigit() else None
            bar = _progress_bar(expected, dest.name, progress)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(bar.task_ids[0], completed=received)
        if expected is not None and received != expected:
            reason = f"connection dropped after {received} of {expected} bytes"
            raise DownloadError(f"could not download {url} to {dest}: {reason}; {_HINT}")
    except DownloadError:
        raise
    except ValueError as err:  # a malformed URL, e.g. from a config typo
        raise DownloadError(f"could not download {url} to {dest}: invalid URL ({err})") from err
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code} {err.reason}"
        raise DownloadError(f"could not download {url} to {dest}: {reason}; {_HINT}") from err
    except http.client.IncompleteRead as err:
        reason = f"connection dropped after {received + len(err.partial)} bytes"
        raise DownloadError(f"could not download {url} to {dest}: {reason}; {_HINT}") from err
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = getattr(err, "reason", None) or err
        reason = str(reason).replace("\n", " ")
        raise DownloadError(f"could not download {url} to {dest}: {reason}; {_HINT}") from err
    finally:
        if bar is not None:
            bar.stop()
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    sha256: str | None = None,
    *,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download url to dest atomically, checking sha256 when given.

    Args:
        url: Source URL (http, https or file).
        dest: Final path; its folder is created if needed.
        sha256: Expected hex digest of the whole file, or None to skip the check.
        progress: Show a progress bar when stderr is a terminal.
        timeout: Socket timeout in seconds.

    Returns:
        dest.

    Raises:
        DownloadError: HTTP error, dropped connection, or checksum mismatch. dest is then
            left as it was and no temp file remains.
    """
    dest = Path(dest)
    with _temp_beside(dest) as (out, tmp):
        got = _stream(url, out, dest, progress=progress, timeout=timeout)
        out.close()
        if sha256 is not None and got != sha256.lower():
            raise DownloadError(
                f"checksum mismatch for {url} (for {dest}): expected sha256 {sha256.lower()}, "
                f"got {got}; the download was discarded. The source may have changed or the "
                f"mirror is wrong: {_HINT}"
            )
        os.replace(tmp, dest)
    return dest


def _extract_member(archive: Path, member: str, dest: Path, sha256: str | None, url: str) -> Path:
    """Extract one member of a zip archive to dest atomically, checking sha256 when given."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            if member not in names:
                shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
                raise DataError(
                    f"{archive} (from {url}) has no member {member!r} for {dest}; it has: {shown}"
                )
            with _temp_beside(dest) as (out, tmp):
                digest = hashlib.sha256()
                with zf.open(member) as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                out.close()
                got = digest.hexdigest()
                if sha256 is None or got == sha256.lower():
                    os.replace(tmp, dest)
                    return dest
    except zipfile.BadZipFile as err:
        archive.unlink(missing_ok=True)  # a corrupt archive would fail the same way next time
        raise DownloadError(
            f"{archive} (from {url}) is not a valid zip archive ({err}); it was removed, "
            f"retry the download or {_HINT} (expected {dest})"
        ) from err
    archive.unlink()  # checksum mismatch: a retry should fetch the archive afresh
    raise DownloadError(
        f"checksum mismatch for {member!r} in {archive} (from {url}, for {dest}): "
        f"expected sha256 {sha256.lower()}, got {got}; the archive was removed; {_HINT}"
    )


def ensure_file(
    root: Path,
    relpath: str,
    url: str | None,
    sha256: str | None,
    *,
    member: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Return root/relpath, downloading it first if it is not there.

    A present file is trusted as is (no checksum pass over it). With ``member``, url is a
    zip archive: it is kept beside the target (so sibling members need one download) and
    ``member`` is extracted to root/relpath; sha256 then applies to the member.

    Raises:
        DataError: The file is missing and no url is known.
        DownloadError: The download or the extraction failed.
    """
    target = Path(root) / relpath
    if target.is_file():
        return target
    if url is None:
        raise DataError(f"{target} not found and no download URL is known for it; {_HINT}")
    if member is None:
        return download(url, target, sha256, progress=progress, timeout=timeout)
    archive_name = Path(urllib.parse.urlparse(url).path).name or "archive.zip"
    archive = target.parent / archive_name
    if not archive.is_file():
        download(url, archive, None, progress=progress, timeout=timeout)
    return _extract_member(archive, member, target, sha256, url)


def _as_source(value: Source | Mapping[str, Any]) -> Source:
    if isinstance(value, Source):
        return value
    return Source(str(value["url"]), value.get("sha256"), value.get("member"))


def fetch(
    root: Path,
    relpath: str,
    *,
    sources: Mapping[str, Source | Mapping[str, Any]] | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """:func:`ensure_file` for a known file of the data root, e.g. ``"sst2/train.tsv"``.

    Args:
        root: The data root.
        relpath: Path under root, a key of :data:`SOURCES` or of ``sources``.
        sources: Overrides of :data:`SOURCES` (a :class:`Source` or a mapping with keys
            url, sha256, member), e.g. a mirror from a config.
    """
    merged: dict[str, Source | Mapping[str, Any]] = {**SOURCES, **(sources or {})}
    source = _as_source(merged[relpath]) if relpath in merged else None
    return ensure_file(
        root,
        relpath,
        source.url if source else None,
        source.sha256 if source else None,
        member=source.member if source else None,
        progress=progress,
        timeout=timeout,
    )
