"""Fetch one model file: streamed to disk, resumable, bounded in size and time, hashed on the way.

* A cut connection resumes with `Range: bytes=<have>-` and `If-Range: <etag>`; if the
  server's ETag changed (or it ignores the range) the partial file is thrown away.
* Bytes past the size the signed manifest declares are never written: the download stops.
* One deadline covers the whole download, resumes included, so a 1 byte/s drip ends.
* The sha256 is computed while streaming (a resume re-hashes the bytes already on disk).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from edge._exceptions import DeadlineExceeded, DownloadError, IntegrityError, OversizeError
from edge._options import DownloadOptions

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclasses.dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    resumes: int  # connection failures recovered from
    restarts: int  # partial files thrown away (ETag changed, range ignored)
    elapsed_s: float


def _hash_prefix(path: Path) -> Any:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest


def download_artifact(
    http: httpx.Client,
    url: str,
    dest_dir: Path,
    *,
    sha256: str,
    size: int,
    options: DownloadOptions | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Download `url` into `dest_dir/<sha256>.part` and return it once its size and sha256 match."""
    options = options or DownloadOptions()
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest_dir / f"{sha256}.part"
    meta = dest_dir / f"{sha256}.part.json"
    start = clock()
    deadline = start + options.deadline_s
    resumes = restarts = 0

    def reset(reason: str) -> None:
        nonlocal restarts
        restarts += 1
        log.info("download of %s restarts from 0: %s", url, reason)
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)

    def fail(exc: DownloadError | IntegrityError) -> DownloadError | IntegrityError:
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        return exc

    while True:
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            reset(f"partial file ({have} B) is longer than the declared {size} B")
            have = 0
        known_etag: str | None = None
        if have and meta.exists():
            known_etag = json.loads(meta.read_text()).get("etag")
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeadlineExceeded(
                f"{url}: {have}/{size} B after {options.deadline_s:.0f} s deadline; will resume later"
            )
        if have == size:
            if _hash_prefix(part).hexdigest() != sha256:
                raise fail(IntegrityError(f"{url}: the complete partial file does not match sha256 {sha256}"))
            break
        headers = {"accept-encoding": "identity"}
        if have:
            headers["range"] = f"bytes={have}-"
            if known_etag:
                headers["if-range"] = known_etag
        timeout = httpx.Timeout(
            connect=min(options.connect_timeout_s, remaining),
            read=min(options.read_timeout_s, remaining),
            write=min(options.read_timeout_s, remaining),
            pool=min(options.connect_timeout_s, remaining),
        )
        try:
            with http.stream("GET", url, headers=headers, timeout=timeout) as response:
                status = response.status_code
                if status == 416:
                    reset("server refused the range (416)")
                    continue
                if status >= 500 or status == 429:
                    raise httpx.TransportError(f"server answered {status}")
                if status >= 400:
                    raise fail(DownloadError(f"{url}: registry answered {status}; not retrying this manifest"))
                etag = response.headers.get("etag")
                if status == 206:
                    match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
                    if known_etag and etag and etag != known_etag:
                        reset(f"ETag changed mid-download ({known_etag} -> {etag})")
                        continue
                    if match is None or int(match.group(1)) != have:
                        reset(f"unusable Content-Range {response.headers.get('content-range')!r}")
                        continue
                    digest = _hash_prefix(part)
                    mode = "ab"
                else:
                    if have:
                        reset(f"server sent the whole file ({status}) instead of the range")
                    have = 0
                    digest = hashlib.sha256()
                    mode = "wb"
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and have + int(declared) > size:
                    raise fail(
                        OversizeError(f"{url}: server announces {have + int(declared)} B; manifest says {size} B")
                    )
                meta.write_text(json.dumps({"etag": etag}))
                with open(part, mode) as handle:
                    # No chunk size: a sized chunker holds bytes back, and a cut would lose them.
                    for chunk in response.iter_raw():
                        if have + len(chunk) > size:
                            raise fail(
                                OversizeError(
                                    f"{url}: server sent more than the manifest's {size} B; stopped at {size}"
                                )
                            )
                        handle.write(chunk)
                        digest.update(chunk)
                        have += len(chunk)
                        if clock() > deadline:
                            handle.flush()
                            raise DeadlineExceeded(
                                f"{url}: {have}/{size} B after {options.deadline_s:.0f} s deadline; will resume later"
                            )
                if have < size:
                    # A clean end of stream before the declared size is a cut like any other.
                    raise httpx.RemoteProtocolError(f"stream ended at {have}/{size} B")
        except httpx.TransportError as exc:
            resumes += 1
            if resumes > options.max_resumes:
                raise DownloadError(f"{url}: gave up after {options.max_resumes} resumes: {exc!r}") from exc
            wait = min(options.resume_backoff_s * 2 ** min(resumes - 1, 6), max(0.0, deadline - clock()))
            log.info("download of %s interrupted at %d/%d B (%r); resuming in %.2f s", url, have, size, exc, wait)
            sleep(wait)
            continue
        if digest.hexdigest() != sha256:
            raise fail(IntegrityError(f"{url}: sha256 {digest.hexdigest()} differs from the manifest's {sha256}"))
        break
    meta.unlink(missing_ok=True)
    return DownloadResult(part, size, resumes, restarts, clock() - start)
