"""New-photo detection: has the photo folder changed since the last ingest, and gone quiet?

A listing (URI, size, version of every object) is reduced to a fingerprint. The
`retrain` DAG records the fingerprint it ingested; the `new_photos` DAG compares the
current one with it and waits until no object has been written for the quiet period,
so a half-finished upload of a new product never starts a retrain.
Works on local folders and `gs://` prefixes alike (through `edgeloop.storage`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging

from edgeloop import storage
from edgeloop.errors import NotFound

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """A listing, reduced: equal fingerprints mean the same set of files, byte for byte as far as sizes tell."""

    digest: str
    objects: int
    total_bytes: int
    newest: dt.datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "objects": self.objects,
            "total_bytes": self.total_bytes,
            "newest": self.newest.isoformat() if self.newest else None,
        }


@dataclasses.dataclass(frozen=True)
class PhotoCheck:
    """The answer the sensor needs: changed since the last ingest, and quiet for how long."""

    fingerprint: Fingerprint
    previous_digest: str | None
    quiet_for_s: float | None

    @property
    def changed(self) -> bool:
        return self.fingerprint.objects > 0 and self.fingerprint.digest != self.previous_digest

    def quiet(self, minutes: float) -> bool:
        return self.quiet_for_s is not None and self.quiet_for_s >= minutes * 60.0


def fingerprint(photos_uri: str) -> Fingerprint:
    """Fingerprint every object under `photos_uri` (an empty or missing folder has zero objects)."""
    digest = hashlib.sha256()
    objects = total = 0
    newest: dt.datetime | None = None
    base = photos_uri.rstrip("/") + "/"
    for info in storage.list_objects(base):
        name = info.uri[len(base) :] if info.uri.startswith(base) else info.uri
        if name.rsplit("/", 1)[-1].startswith("."):
            continue  # hidden files and in-flight uploads are not photos
        # Size and object version (mtime_ns locally, generation on GCS) catch a rewrite in place.
        digest.update(f"{name}\t{info.size}\t{info.generation}\n".encode())
        objects += 1
        total += info.size
        if info.updated is not None and (newest is None or info.updated > newest):
            newest = info.updated
    return Fingerprint(digest.hexdigest(), objects, total, newest)


def _state_uri(state_root: str, photos_uri: str) -> str:
    key = hashlib.sha256(photos_uri.rstrip("/").encode()).hexdigest()[:16]
    return storage.join(state_root, "photos", f"{key}.json")


def last_ingested(state_root: str, photos_uri: str) -> str | None:
    """The digest of the listing the last successful ingest read, if any."""
    try:
        data = json.loads(storage.read_text(_state_uri(state_root, photos_uri)))
    except NotFound:
        return None
    digest = data.get("digest")
    return str(digest) if digest else None


def remember_ingested(state_root: str, photos_uri: str, fp: Fingerprint, dataset_version: str) -> str:
    """Record what was ingested; returns the state URI. Rewriting the same content is harmless."""
    uri = _state_uri(state_root, photos_uri)
    payload = {**fp.to_json(), "photos_uri": photos_uri, "dataset_version": dataset_version}
    storage.write_text(uri, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return uri


def check(photos_uri: str, state_root: str, now: dt.datetime | None = None) -> PhotoCheck:
    """Compare the photos with the last ingest and measure how long uploads have been quiet."""
    now = now or dt.datetime.now(dt.UTC)
    fp = fingerprint(photos_uri)
    quiet = (now - fp.newest).total_seconds() if fp.newest else None
    result = PhotoCheck(fp, last_ingested(state_root, photos_uri), quiet)
    log.info(
        "photos %s: %d objects, %d bytes, changed=%s, quiet for %s s",
        photos_uri,
        fp.objects,
        fp.total_bytes,
        result.changed,
        None if quiet is None else round(quiet),
    )
    return result
