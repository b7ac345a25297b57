"""Download files with a checksum check, writing them atomically into a cache.

A file is streamed into a temporary file next to its destination, hashed on the
way, and renamed into place only when its SHA-256 matches. An interrupted or
wrong download therefore never leaves a file under the final name.
"""
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

CONNECT_TIMEOUT = 5.0        # seconds; also the limit for each read
MAX_BYTES = 64 * 2**20       # refuse anything larger than this
CHUNK = 2**16


class DownloadError(OSError):
    """A file could not be downloaded, or its checksum did not match.

    Attributes:
        url: the address that failed (None for a summary of several).
        reason: what went wrong, without the address.
        errors: for :func:`fetch`, one DownloadError per mirror tried.
    """

    def __init__(self, url, reason, errors=()):
        super().__init__(f"{url}: {reason}" if url else reason)
        self.url, self.reason, self.errors = url, reason, list(errors)


def offline():
    """True when ``$NPGAN_OFFLINE`` is set to 1 / true / yes / on."""
    return os.environ.get("NPGAN_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def download(url, dest, sha256, timeout=CONNECT_TIMEOUT, progress=False, max_bytes=MAX_BYTES):
    """Download ``url`` to ``dest`` if its SHA-256 is ``sha256``.

    Args:
        url: the address to fetch.
        dest: final path; its folder is created if needed.
        sha256: expected hex digest of the whole file.
        timeout: seconds allowed for connecting and for each read.
        progress: show a tqdm bar (on stderr, and only on a terminal).
        max_bytes: refuse a file larger than this (default ``MAX_BYTES``).

    Raises:
        DownloadError: network or HTTP failure, a file over ``MAX_BYTES``, or a
            checksum mismatch. Nothing is left at ``dest`` or beside it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, timeout, progress, max_bytes)
        if digest != sha256.lower():
            raise DownloadError(url, f"SHA-256 mismatch (got {digest}, expected {sha256})")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stream(url, out, timeout, progress, max_bytes=MAX_BYTES):
    """Copy ``url`` into the open file ``out``; return the SHA-256 hex digest."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name,
                       leave=False, disable=None if progress else True)
            with bar:
                size = 0
                while chunk := response.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(url, f"larger than {max_bytes} bytes, refused")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ValueError) as err:
        raise DownloadError(url, _reason(err)) from err
    except DownloadError:
        raise
    except OSError as err:  # connection reset, disk full while writing, ...
        raise DownloadError(url, str(err)) from err
    return digest.hexdigest()


def _reason(err):
    """A short human-readable reason for a urllib error."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return str(err) or type(err).__name__


def fetch(filenames, dest_dir, mirrors, checksums, timeout=CONNECT_TIMEOUT, progress=False, max_bytes=MAX_BYTES):
    """Download each of ``filenames`` into ``dest_dir`` from the first mirror that works.

    Files already in ``dest_dir`` are kept (they were verified when written).
    When every mirror fails for a file the whole fetch stops, so a machine
    without network spends at most one attempt per mirror.

    Args:
        filenames: names to fetch, appended to each mirror's base URL.
        dest_dir: the cache folder.
        mirrors: base URLs ending in ``/``, tried in order.
        checksums: ``{filename: sha256 hex}``.
        timeout, progress, max_bytes: as for :func:`download`.

    Returns:
        The base URL of the mirror the last file came from, or ``None`` when
        every file was already cached.

    Raises:
        DownloadError: a file could not be fetched from any mirror; the
            message lists each mirror's failure.
    """
    dest_dir = Path(dest_dir)
    used = None
    for filename in filenames:
        if (dest_dir / filename).is_file():
            continue
        failures = []
        for base in mirrors:
            try:
                download(base + filename, dest_dir / filename, checksums[filename],
                         timeout=timeout, progress=progress, max_bytes=max_bytes)
            except DownloadError as err:
                failures.append(err)
            else:
                used = base
                break
        else:
            if not failures:
                raise DownloadError(None, f"{filename}: no mirrors configured")
            raise DownloadError(None, "; ".join(map(str, failures)), failures)
    return used
