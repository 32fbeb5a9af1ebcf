"""Storage by URI: local paths, `file://` and `gs://`, chosen by scheme here and nowhere else.

Every write is atomic: a reader sees the old object or the new one, never a part.
Locally that is temp file + fsync + rename (+ fsync of the folder); on GCS an upload
only becomes visible when complete, and generation preconditions stop two writers
from silently overwriting each other.

Set `STORAGE_EMULATOR_HOST` to point `gs://` at an emulator (tests do).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import os
import shutil
import stat as stat_mode
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlparse

from edgeloop.errors import MissingExtra, NotFound, NotPlainFile, PreconditionFailed, StorageError, UnsupportedScheme

CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """One stored object: where it is, how big, and its version where the backend has one."""

    uri: str
    size: int
    updated: datetime | None = None
    generation: int | None = None


class Backend(Protocol):
    def open_read(self, uri: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def open_write(
        self, uri: str, *, if_absent: bool, if_generation: int | None
    ) -> contextlib.AbstractContextManager[IO[bytes]]: ...
    def stat(self, uri: str) -> ObjectInfo: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def delete(self, uri: str) -> None: ...


# --------------------------------------------------------------------------- local


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise UnsupportedScheme(f"file URI {uri!r} names host {parsed.netloc!r}; use file:///absolute/path")
        return Path(unquote(parsed.path))
    return Path(uri)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat_mode.S_ISDIR, "folder"), (stat_mode.S_ISFIFO, "FIFO"), (stat_mode.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "device" if stat_mode.S_ISCHR(mode) or stat_mode.S_ISBLK(mode) else "special file"


def _open_plain_local(uri: str, within: str | None) -> IO[bytes]:
    """Open a regular file of its own, refusing what would let a file stand for another one.

    O_NOFOLLOW refuses a symlink as the last component; O_NONBLOCK keeps a FIFO from hanging
    the open; fstat on the open descriptor (not the path, which may change meanwhile) refuses
    devices, FIFOs and files with other hard links. `within`: the file's real path, read
    back from the descriptor, must lie inside that folder (a folder swapped for a symlink
    between the caller's checks and the open is caught here).
    """
    path = _local_path(uri)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotFound(f"{uri!r} does not exist; check the path") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise NotPlainFile(
                f"{uri!r} is a symbolic link; only regular files are accepted (copy the file in)"
            ) from None
        raise StorageError(f"cannot open {uri!r}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat_mode.S_ISREG(info.st_mode):
            raise NotPlainFile(f"{uri!r} is a {_kind(info.st_mode)}; only regular files are accepted")
        if info.st_nlink != 1:
            raise NotPlainFile(
                f"{uri!r} has {info.st_nlink} hard links; only files of their own are accepted (copy it instead)"
            )
        if within is not None:
            real = Path(f"/proc/self/fd/{fd}").readlink() if Path("/proc/self/fd").is_dir() else path.resolve()
            folder = Path(within).resolve()
            if folder not in real.parents:
                raise NotPlainFile(f"{uri!r} resolves outside {within!r}; only files inside it are accepted")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class LocalBackend:
    """Plain files. `uri` may be a path or a `file://` URI; results keep the caller's form."""

    def open_read(self, uri: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        path = _local_path(uri)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise NotFound(f"{uri!r} does not exist; check the path") from None
        except IsADirectoryError:
            raise StorageError(f"{uri!r} is a folder, not a file") from None

    @contextlib.contextmanager
    def open_write(self, uri: str, *, if_absent: bool, if_generation: int | None) -> Iterator[IO[bytes]]:
        path = _local_path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create folder for {uri!r}: {exc.strerror}") from None
        if if_generation is not None and self._generation(path) != if_generation:
            raise PreconditionFailed(f"{uri!r} changed since generation {if_generation}; read it again")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            if if_absent:
                # link() refuses an existing target atomically, unlike rename().
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise PreconditionFailed(f"{uri!r} already exists and is never overwritten") from None
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @staticmethod
    def _generation(path: Path) -> int:
        try:
            return path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def stat(self, uri: str) -> ObjectInfo:
        path = _local_path(uri)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"{uri!r} does not exist; check the path") from None
        if path.is_dir():
            raise StorageError(f"{uri!r} is a folder, not a file")
        return ObjectInfo(uri, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), st.st_mtime_ns)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        root = _local_path(prefix)
        if not root.is_dir():
            return iter(())
        as_file_uri = prefix.startswith("file://")
        found = []
        for dirpath, _dirnames, filenames in os.walk(root):
            for name in filenames:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # an in-flight atomic write, not an object yet
                full = Path(dirpath) / name
                st = full.stat()
                uri = full.resolve().as_uri() if as_file_uri else str(full)
                found.append(ObjectInfo(uri, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), st.st_mtime_ns))
        return iter(sorted(found, key=lambda o: o.uri))

    def delete(self, uri: str) -> None:
        path = _local_path(uri)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound(f"{uri!r} does not exist; nothing to delete") from None


# --------------------------------------------------------------------------- gcs


def _split_gs(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise StorageError(f"{uri!r} names no bucket; use gs://BUCKET/path")
    return parsed.netloc, parsed.path.lstrip("/")


@functools.cache
def _gcs_client(emulator: str | None, project: str | None) -> Any:
    try:
        from google.cloud import storage as gcs  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        raise MissingExtra("google-cloud-storage", "gcp") from None
    if emulator:
        from google.auth.credentials import AnonymousCredentials

        return gcs.Client(project=project or "edgeloop-local", credentials=AnonymousCredentials())
    return gcs.Client(project=project)


class GCSBackend:
    """Google Cloud Storage through google-cloud-storage."""

    def _client(self) -> Any:
        return _gcs_client(os.environ.get("STORAGE_EMULATOR_HOST"), os.environ.get("GOOGLE_CLOUD_PROJECT"))

    def _blob(self, uri: str) -> Any:
        bucket, name = _split_gs(uri)
        if not name:
            raise StorageError(f"{uri!r} names a bucket, not an object; add a path")
        return self._client().bucket(bucket).blob(name)

    @staticmethod
    def _translate(uri: str, exc: Exception) -> StorageError:
        from google.api_core import exceptions as gexc

        bucket, _ = _split_gs(uri)
        if isinstance(exc, gexc.NotFound):
            text = str(exc).lower()
            if "bucket" in text:
                return NotFound(
                    f"bucket {bucket!r} does not exist; create it (gcloud storage buckets create gs://{bucket}) or fix the URI"
                )
            return NotFound(f"{uri!r} does not exist; check the path")
        if isinstance(exc, gexc.PreconditionFailed):
            return PreconditionFailed(f"{uri!r} was written by someone else first; read it again")
        if isinstance(exc, gexc.Forbidden):
            return StorageError(f"access to {uri!r} is denied; check the credentials' roles on bucket {bucket!r}")
        return StorageError(f"{uri!r}: {exc}")

    @contextlib.contextmanager
    def open_read(self, uri: str) -> Iterator[IO[bytes]]:
        from google.api_core import exceptions as gexc

        blob = self._blob(uri)
        try:
            blob.reload()  # pins the generation, so a concurrent overwrite cannot mix two versions
            reader = blob.open("rb", chunk_size=CHUNK)
        except gexc.GoogleAPIError as exc:
            raise self._translate(uri, exc) from None
        try:
            yield reader
        finally:
            reader.close()

    @contextlib.contextmanager
    def open_write(self, uri: str, *, if_absent: bool, if_generation: int | None) -> Iterator[IO[bytes]]:
        from google.api_core import exceptions as gexc

        blob = self._blob(uri)
        if if_absent:
            # Checked before spending the upload; the server-side precondition below closes the race.
            try:
                present = blob.exists()
            except gexc.GoogleAPIError as exc:
                raise self._translate(uri, exc) from None
            if present:
                raise PreconditionFailed(f"{uri!r} already exists and is never overwritten")
        # Spool locally, upload on success: the object appears whole or not at all.
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            yield spool
            spool.seek(0)
            match = 0 if if_absent else if_generation
            try:
                blob.upload_from_file(spool, rewind=True, if_generation_match=match)
            except gexc.GoogleAPIError as exc:
                raise self._translate(uri, exc) from None

    def stat(self, uri: str) -> ObjectInfo:
        from google.api_core import exceptions as gexc

        blob = self._blob(uri)
        try:
            blob.reload()
        except gexc.GoogleAPIError as exc:
            raise self._translate(uri, exc) from None
        return ObjectInfo(uri, int(blob.size or 0), blob.updated, blob.generation)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        from google.api_core import exceptions as gexc

        bucket, name = _split_gs(prefix)
        folder = name.rstrip("/") + "/" if name.strip("/") else ""
        try:
            for blob in self._client().list_blobs(bucket, prefix=folder):
                yield ObjectInfo(f"gs://{bucket}/{blob.name}", int(blob.size or 0), blob.updated, blob.generation)
        except gexc.GoogleAPIError as exc:
            raise self._translate(prefix, exc) from None

    def delete(self, uri: str) -> None:
        from google.api_core import exceptions as gexc

        try:
            self._blob(uri).delete()
        except gexc.GoogleAPIError as exc:
            raise self._translate(uri, exc) from None


# --------------------------------------------------------------------------- dispatch

_LOCAL = LocalBackend()
_GCS = GCSBackend()


def scheme(uri: str) -> str:
    """`file` for paths and file:// URIs, `gs` for gs:// URIs; anything else is refused."""
    if "://" not in uri:
        return "file"
    name = uri.split("://", 1)[0].lower()
    if name in ("file", "gs"):
        return name
    raise UnsupportedScheme(f"unsupported storage URI {uri!r}; use a local path, file:///path or gs://bucket/path")


def backend(uri: str) -> Backend:
    """The backend that serves `uri`."""
    return _GCS if scheme(uri) == "gs" else _LOCAL


def is_local(uri: str) -> bool:
    return scheme(uri) == "file"


def local_path(uri: str) -> Path:
    """The filesystem path of a local URI."""
    if not is_local(uri):
        raise StorageError(f"{uri!r} is not local storage")
    return _local_path(uri)


def join(base: str, *parts: str) -> str:
    """Join path parts onto a URI or path with `/`, keeping its scheme."""
    out = str(base)
    for part in parts:
        part = str(part)
        if not part:
            continue
        out = out.rstrip("/") + "/" + part.lstrip("/") if out else part
    return out


def open_read(uri: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Open an object for streaming reads."""
    return backend(uri).open_read(uri)


def open_write(
    uri: str, *, if_absent: bool = False, if_generation: int | None = None
) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Open an object for writing; it appears atomically when the block exits without error.

    `if_absent` refuses to overwrite (content-addressed objects); `if_generation` refuses
    unless the object is still at that generation (read-modify-write).
    """
    return backend(uri).open_write(uri, if_absent=if_absent, if_generation=if_generation)


def open_plain(uri: str, *, within: str | None = None) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Open a file someone less trusted placed (a package to publish): only a regular file of its own.

    Locally, a symlink, a hard link, a device or a FIFO raises `NotPlainFile`, as does a file
    whose real path is outside the local folder `within`. Object stores hold nothing but plain
    objects, so there it is `open_read`.
    """
    if scheme(uri) == "file":
        return _open_plain_local(uri, within)
    return open_read(uri)


def read_bytes(uri: str) -> bytes:
    with open_read(uri) as handle:
        return handle.read()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes, *, if_absent: bool = False, if_generation: int | None = None) -> None:
    with open_write(uri, if_absent=if_absent, if_generation=if_generation) as handle:
        handle.write(data)


def write_text(uri: str, text: str, **kwargs: Any) -> None:
    write_bytes(uri, text.encode("utf-8"), **kwargs)


def stat(uri: str) -> ObjectInfo:
    return backend(uri).stat(uri)


def exists(uri: str) -> bool:
    try:
        stat(uri)
    except NotFound:
        return False
    except StorageError:
        return False
    return True


def size(uri: str) -> int:
    return stat(uri).size


def list_objects(folder: str) -> Iterator[ObjectInfo]:
    """Every object under `folder`, recursively, sorted by URI; nothing if the folder is absent."""
    return backend(folder).list(folder)


def delete(uri: str) -> None:
    backend(uri).delete(uri)


def sha256(uri: str) -> tuple[str, int]:
    """The hex sha256 and size of an object, computed while streaming it."""
    digest = hashlib.sha256()
    total = 0
    with open_read(uri) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            total += len(chunk)
    return digest.hexdigest(), total


def copy(src: str, dst: str, *, if_absent: bool = False) -> None:
    """Stream one object to another URI, across backends if need be."""
    with open_read(src) as reader, open_write(dst, if_absent=if_absent) as writer:
        shutil.copyfileobj(reader, writer, CHUNK)


def upload(path: str | Path, uri: str, *, if_absent: bool = False) -> None:
    copy(str(path), uri, if_absent=if_absent)


def download(uri: str, path: str | Path) -> None:
    copy(uri, str(path))


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """A local filesystem path holding the object, for libraries that only take paths."""
    if is_local(uri):
        yield local_path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="edgeloop-") as tmp:
        target = Path(tmp) / Path(_split_gs(uri)[1]).name
        download(uri, target)
        yield target
