"""Publishing: check a package byte for byte, store its files by sha256, give it a version number.

A package arrives either as uploaded parts (already spooled to temporary files) or as a
folder URI in storage. Either way every listed file is re-hashed here; the card's word
is never taken for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from edge.variants import VARIANTS
from edgeloop import storage
from edgeloop.card import CARD_NAME, ModelCard
from edgeloop.errors import NotFound, NotPlainFile, PreconditionFailed, StorageError
from registry_api import crud, db
from registry_api.errors import Conflict, PackageRejected, PayloadTooLarge

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_CARD_BYTES = 4 * 1024 * 1024
_ATTEMPTS = 20


@dataclasses.dataclass(frozen=True)
class VerifiedPackage:
    card: ModelCard
    card_json: dict[str, Any]
    digest: str
    variants: list[dict[str, Any]]


def artifact_uri(root: str, sha256: str) -> str:
    """Content-addressed location: <root>/<first two hex>/<sha256>."""
    return storage.join(root, sha256[:2], sha256)


def card_digest(card_json: Mapping[str, Any]) -> str:
    """sha256 of the canonical card JSON; the card lists every file's sha256, so this names the package."""
    return hashlib.sha256(json.dumps(card_json, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse_card(raw: bytes, model: str) -> ModelCard:
    try:
        card = ModelCard.model_validate_json(raw)
    except ValidationError as exc:
        raise PackageRejected(
            f"{CARD_NAME} does not match the model card schema: {exc.errors(include_url=False)}"
        ) from None
    if card.name != model:
        raise PackageRejected(f"the card names model {card.name!r} but it is being published as {model!r}")
    if not card.labels:
        raise PackageRejected("the card lists no labels")
    if card.gate is None:
        raise PackageRejected("the card carries no gate report; run the gate (or force it) before publishing")
    if card.gate.verdict not in ("pass", "forced"):
        raise PackageRejected(f"gate verdict is {card.gate.verdict!r}; only 'pass' or 'forced' may be published")
    if card.gate.verdict == "forced" and not card.gate.forced_by:
        raise PackageRejected("gate verdict is 'forced' but forced_by is empty; say who forced it")
    names = [v.variant for v in card.variants]
    if len(set(names)) != len(names):
        raise PackageRejected(f"the card lists a variant twice: {names}")
    for entry in card.variants:
        if any(c in entry.file for c in "/\\\0") or entry.file in ("", ".", "..", CARD_NAME):
            raise PackageRejected(f"variant {entry.variant!r} names file {entry.file!r}; use a plain file name")
        if len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256):
            raise PackageRejected(f"variant {entry.variant!r}: sha256 {entry.sha256!r} is not 64 lowercase hex digits")
        if entry.publishable:
            spec = VARIANTS.get(entry.variant)
            if spec is None:
                raise PackageRejected(f"publishable variant {entry.variant!r} is unknown; known: {', '.join(VARIANTS)}")
            if (entry.runtime, entry.quantization) != (spec.runtime, spec.quantization):
                raise PackageRejected(
                    f"variant {entry.variant!r} claims {entry.runtime}/{entry.quantization}; "
                    f"the variant table says {spec.runtime}/{spec.quantization}"
                )
            if entry.size <= 0:
                raise PackageRejected(f"publishable variant {entry.variant!r} is empty")
    if not card.publishable_variants():
        raise PackageRejected("no variant passed its parity checks (publishable=false everywhere); nothing to serve")
    return card


def _hash(handle: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    handle.seek(0)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def _store(handle: IO[bytes], root: str, sha: str) -> None:
    """Copy a checked file to its content address unless it is there already."""
    uri = artifact_uri(root, sha)
    if storage.exists(uri):
        return
    handle.seek(0)
    try:
        with storage.open_write(uri, if_absent=True) as out:
            shutil.copyfileobj(handle, out, CHUNK)
    except PreconditionFailed:
        pass  # a concurrent publish stored the same bytes; content addressing makes them equal


def verify_and_store(card_raw: bytes, files: Mapping[str, IO[bytes]], model: str, root: str) -> VerifiedPackage:
    """Check the card and every listed file, then store the files by content; raise `PackageRejected`.

    Nothing is stored until every file checks out, so a refused package leaves no trace. A
    mismatch names the file and what the card claims, never what the file holds: the
    publisher chose the card, not necessarily the bytes (a by-URI package is read server-side).
    """
    card = parse_card(card_raw, model)
    listed = {v.file for v in card.variants}
    extra = sorted(set(files) - listed)
    if extra:
        raise PackageRejected(f"files not listed in the card: {extra}; list them or leave them out")
    rows = []
    for entry in card.variants:
        handle = files.get(entry.file)
        if handle is None:
            raise PackageRejected(f"variant {entry.variant!r}: file {entry.file!r} is missing from the package")
        sha, size = _hash(handle)
        if sha != entry.sha256 or size != entry.size:
            raise PackageRejected(
                f"variant {entry.variant!r}: {entry.file} does not match the card's sha256 {entry.sha256} and "
                f"size {entry.size}; re-run the conversion or fix the card"
            )
        rows.append(
            {
                "variant": entry.variant,
                "file": entry.file,
                "sha256": sha,
                "size": size,
                "runtime": entry.runtime,
                "quantization": entry.quantization,
                "publishable": entry.publishable,
                "reason": entry.reason,
            }
        )
    for entry in card.variants:
        _store(files[entry.file], root, entry.sha256)
    card_json = card.model_dump(mode="json")
    return VerifiedPackage(card, card_json, card_digest(card_json), rows)


def _read_plain(uri: str, folder: str, name: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A package file: a regular file inside the package folder, nothing a link could point elsewhere."""
    try:
        return storage.open_plain(storage.join(uri, name), within=folder if storage.is_local(uri) else None)
    except NotPlainFile as exc:
        raise PackageRejected(f"package file {name!r} refused: {exc}") from None


@contextlib.contextmanager
def fetch_package(uri: str, max_bytes: int) -> Iterator[tuple[bytes, dict[str, IO[bytes]]]]:
    """Spool a package folder from storage (card + listed files), capped at `max_bytes` in all.

    Only regular files of their own, inside the folder, are read (see `storage.open_plain`):
    a symlink or hard link to a secret elsewhere is refused before a byte of it is read.
    """
    folder = str(storage.local_path(uri)) if storage.is_local(uri) else uri
    try:
        with _read_plain(uri, folder, CARD_NAME) as reader:
            card_raw = reader.read(MAX_CARD_BYTES + 1)
    except NotFound:
        raise PackageRejected(f"no {CARD_NAME} at {uri!r}; point package_uri at a package folder") from None
    except StorageError as exc:
        raise PackageRejected(f"cannot read package at {uri!r}: {exc}") from None
    if len(card_raw) > MAX_CARD_BYTES:
        raise PayloadTooLarge(f"{CARD_NAME} is over {MAX_CARD_BYTES} bytes")
    try:
        names = [
            str(v["file"]) for v in json.loads(card_raw).get("variants", []) if isinstance(v, dict) and "file" in v
        ]
    except (ValueError, AttributeError):
        raise PackageRejected(f"{CARD_NAME} at {uri!r} is not a JSON object") from None
    budget = max_bytes
    with contextlib.ExitStack() as stack:
        files: dict[str, IO[bytes]] = {}
        for name in names:
            if "/" in name or "\\" in name or "\0" in name or name in ("", ".", "..") or name in files:
                continue  # parse_card rejects it with a clear message
            spool: IO[bytes] = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=8 * CHUNK))
            try:
                with _read_plain(uri, folder, name) as reader:
                    while chunk := reader.read(CHUNK):
                        budget -= len(chunk)
                        if budget < 0:
                            raise PayloadTooLarge(f"package at {uri!r} is over the {max_bytes}-byte cap")
                        spool.write(chunk)
            except NotFound:
                continue  # reported as a missing file by verify_and_store
            except StorageError as exc:
                raise PackageRejected(f"cannot read {name!r} of the package at {uri!r}: {exc}") from None
            files[name] = spool
        yield card_raw, files


def record_version(
    sessions: sessionmaker[Session], model: str, package: VerifiedPackage, actor: str, source_uri: str | None
) -> tuple[db.ModelVersion, bool]:
    """Give the package a version number (or find its existing one): (version, created).

    Numbers come from max+1 inside a transaction that holds the model's write lock
    (`crud.lock_model`); the unique constraints on (model, number) and (model, digest) stay the
    last word: a publisher that still loses a race retries, finding either its digest (same
    package → same version) or the next free number.
    """
    for attempt in range(_ATTEMPTS):
        try:
            with sessions.begin() as session:
                crud.lock_model(session, model)
                existing = crud.find_by_digest(session, model, package.digest)
                if existing is not None:
                    return existing, False
                row = crud.add_version(
                    session,
                    model=model,
                    number=crud.next_number(session, model),
                    digest=package.digest,
                    card=package.card_json,
                    variants=package.variants,
                    actor=actor,
                    source_uri=source_uri,
                )
            log.info("published %s version %d (%s) by %s", model, row.number, package.digest[:12], actor)
            return row, True
        except (IntegrityError, OperationalError) as exc:
            log.info("publish of %s lost a race (attempt %d): %s", model, attempt + 1, type(exc).__name__)
    raise Conflict(f"could not allocate a version of {model!r} after {_ATTEMPTS} attempts; retry")
