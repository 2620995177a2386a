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

_HINT = "place the file there yourself or set data.root (or $NLP_LSTM_DATA) to a folder that has it"
_CHUNK = 1 << 16


class DownloadError(DataError):
    """A download failed or did not match its checksum; nothing was left behind."""


@dataclass(frozen=True)
class RemoteFile:
    """Where a file of the data root comes from.

    Attributes:
        url: Where to download it (or the zip archive that holds it).
        sha256: Expected checksum of the file itself, None when it is not stable.
        member: Path of the file inside the zip archive at ``url``; None for a plain file.
    """

    url: str
    sha256: str | None = None
    member: str | None = None


#: A table of remote files keyed by their path under the data root. Each task's data module
#: has its own (e.g. ``SST2_FILES``); configs override entries with mappings (mirrors).
RemoteFiles = Mapping[str, "RemoteFile | Mapping[str, Any]"]


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


def _as_remote(value: RemoteFile | Mapping[str, Any]) -> RemoteFile:
    if isinstance(value, RemoteFile):
        return value
    return RemoteFile(str(value["url"]), value.get("sha256"), value.get("member"))


def fetch(
    root: Path,
    relpath: str,
    *,
    sources: RemoteFiles,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """:func:`ensure_file` for a file of the data root named in ``sources``.

    Args:
        root: The data root.
        relpath: Path under root, e.g. ``"sst2/train.tsv"``.
        sources: Remote files by path (a :class:`RemoteFile` or a mapping with keys url,
            sha256, member): a task's table merged with a config's overrides (mirrors).
    """
    remote = _as_remote(sources[relpath]) if relpath in sources else None
    return ensure_file(
        root,
        relpath,
        remote.url if remote else None,
        remote.sha256 if remote else None,
        member=remote.member if remote else None,
        progress=progress,
        timeout=timeout,
    )


def require(root: Path, relpath: str, *, sources: RemoteFiles, download: bool, what: str) -> Path:
    """``root/relpath``, downloaded first when it is missing and ``download`` is true; else a
    DataError that says where to place ``what`` (e.g. "SST-2")."""
    path = Path(root) / relpath
    if path.exists():
        return path
    if not download:
        raise DataError(f"{path} is missing and data.source.download is false; place {what} "
                        "there or set data.root (or $NLP_LSTM_DATA)")
    return fetch(root, relpath, sources=sources)
