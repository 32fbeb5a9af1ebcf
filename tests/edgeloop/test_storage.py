"""Storage contract: the same behaviour for local paths, file:// URIs and gs:// (emulator)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from edgeloop import storage
from edgeloop.errors import NotFound, PreconditionFailed, StorageError, UnsupportedScheme


@pytest.fixture(params=["path", "file", pytest.param("gs", marks=pytest.mark.gcs)])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "path":
        return str(tmp_path / "store")
    if request.param == "file":
        return (tmp_path / "store").as_uri()
    bucket: str = request.getfixturevalue("gcs_bucket")
    return f"{bucket}/store"


def test_write_read_roundtrip(root: str) -> None:
    uri = storage.join(root, "a", "b.bin")
    storage.write_bytes(uri, b"\x00hello")
    assert storage.read_bytes(uri) == b"\x00hello"
    assert storage.exists(uri)
    assert storage.size(uri) == 6
    storage.write_text(uri, "replaced")
    assert storage.read_text(uri) == "replaced"


def test_sha256_streams_large_objects(root: str) -> None:
    data = os.urandom(3 * storage.CHUNK + 17)
    uri = storage.join(root, "big.bin")
    with storage.open_write(uri) as handle:
        for i in range(0, len(data), 100_000):
            handle.write(data[i : i + 100_000])
    assert storage.sha256(uri) == (hashlib.sha256(data).hexdigest(), len(data))


def test_list_with_prefix_is_sorted_and_recursive(root: str) -> None:
    for name in ("b/2.txt", "a/1.txt", "a/sub/3.txt", "c.txt"):
        storage.write_text(storage.join(root, name), name)
    listed = [o.uri for o in storage.list_objects(storage.join(root, "a"))]
    assert [u.rsplit("store/", 1)[1] for u in listed] == ["a/1.txt", "a/sub/3.txt"]
    everything = [o.uri.rsplit("store/", 1)[1] for o in storage.list_objects(root)]
    assert everything == ["a/1.txt", "a/sub/3.txt", "b/2.txt", "c.txt"]
    assert all(o.size > 0 for o in storage.list_objects(root))


def test_missing_object(root: str) -> None:
    uri = storage.join(root, "nope.txt")
    assert not storage.exists(uri)
    with pytest.raises(NotFound, match=r"nope\.txt"):
        storage.read_bytes(uri)
    with pytest.raises(NotFound):
        storage.size(uri)
    assert list(storage.list_objects(storage.join(root, "nothing-here"))) == []


def test_if_absent_never_overwrites(root: str) -> None:
    uri = storage.join(root, "cas", "abc")
    storage.write_bytes(uri, b"first", if_absent=True)
    with pytest.raises(PreconditionFailed, match="never overwritten"):
        storage.write_bytes(uri, b"second", if_absent=True)
    assert storage.read_bytes(uri) == b"first"


def test_failed_write_leaves_nothing_behind(root: str) -> None:
    uri = storage.join(root, "partial.bin")
    with pytest.raises(RuntimeError), storage.open_write(uri) as handle:
        handle.write(b"half of it")
        raise RuntimeError("crash mid-write")
    assert not storage.exists(uri)
    assert list(storage.list_objects(root)) == []


def test_failed_overwrite_keeps_old_version(root: str) -> None:
    uri = storage.join(root, "keep.txt")
    storage.write_text(uri, "old")
    with pytest.raises(RuntimeError), storage.open_write(uri) as handle:
        handle.write(b"new but unfinished")
        raise RuntimeError("crash mid-write")
    assert storage.read_text(uri) == "old"


def test_reader_never_sees_a_partial_object(root: str) -> None:
    """A reader racing a writer sees one complete version or the other, never a mix."""
    uri = storage.join(root, "hot.bin")
    versions = [bytes([i]) * 300_000 for i in range(6)]
    storage.write_bytes(uri, versions[0])
    digests = {hashlib.sha256(v).hexdigest() for v in versions}
    seen: list[str] = []
    stop = threading.Event()
    read_done = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(hashlib.sha256(storage.read_bytes(uri)).hexdigest())
            read_done.set()

    def a_full_read_happens() -> None:
        # Interleave by event, not by speed: the writer goes on only after the reader has finished
        # a read begun after this point, so reads fall between the slices of every write.
        read_done.clear()
        assert read_done.wait(60), "the reader never ran"
        read_done.clear()
        assert read_done.wait(60), "the reader stopped"

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in versions[1:]:
            with storage.open_write(uri) as handle:
                # Written in slices so a non-atomic backend would expose a prefix.
                for i in range(0, len(version), 50_000):
                    handle.write(version[i : i + 50_000])
                    a_full_read_happens()
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 2 * 5 * 6  # two reads after each of the 6 slices of 5 writes
    assert set(seen) <= digests


def test_copy_between_uris(root: str, tmp_path: Path) -> None:
    src = tmp_path / "local.txt"
    src.write_text("payload")
    uri = storage.join(root, "copied.txt")
    storage.upload(src, uri)
    storage.download(uri, tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_text() == "payload"
    with storage.local_copy(uri) as path:
        assert path.read_text() == "payload"


def test_delete(root: str) -> None:
    uri = storage.join(root, "gone.txt")
    storage.write_text(uri, "x")
    storage.delete(uri)
    assert not storage.exists(uri)
    with pytest.raises(NotFound):
        storage.delete(uri)


def test_generation_precondition_locally(tmp_path: Path) -> None:
    uri = str(tmp_path / "g.txt")
    storage.write_text(uri, "v1")
    generation = storage.stat(uri).generation
    storage.write_text(uri, "v2", if_generation=generation)
    with pytest.raises(PreconditionFailed, match="changed since generation"):
        storage.write_text(uri, "v3", if_generation=generation)
    assert storage.read_text(uri) == "v2"


@pytest.mark.parametrize("uri", ["s3://bucket/key", "http://example.com/x", "ftp://host/file"])
def test_unknown_scheme_is_refused_with_the_fix(uri: str) -> None:
    with pytest.raises(UnsupportedScheme, match="gs://bucket/path"):
        storage.read_bytes(uri)


def test_file_uri_with_host_is_refused() -> None:
    with pytest.raises(UnsupportedScheme, match="file:///absolute/path"):
        storage.read_bytes("file://server/share/x")


@pytest.mark.gcs
def test_missing_bucket_names_the_bucket(gcs_emulator: str) -> None:
    with pytest.raises(NotFound, match="bucket 'no-such-bucket-here' does not exist"):
        storage.read_bytes("gs://no-such-bucket-here/x.txt")


def test_bucket_without_object_is_refused() -> None:
    with pytest.raises(StorageError, match="names a bucket"):
        storage.read_bytes("gs://just-a-bucket")


def test_join_keeps_scheme() -> None:
    assert storage.join("gs://b/x/", "/y", "z.txt") == "gs://b/x/y/z.txt"
    assert storage.join("/tmp/a", "b") == "/tmp/a/b"
    assert storage.join("file:///tmp/a", "b") == "file:///tmp/a/b"
