"""The checks an update passes before it touches the store, in a fixed order.

1. Ed25519 signature with a pinned key (`edge.manifest.verify`)   -> ManifestError
2. not expired, not issued in the future (a frozen or replayed answer) -> ManifestExpired
3. model name and alias the device asked for                      -> WrongModel
4. alias sequence not below the highest seen here (a replay)      -> StaleManifest
5. version not lower than installed, unless a signed rollback
   issued after the manifest that installed the current model     -> RollbackRefused
6. runtime and labels as expected                                 -> WrongModel
7. after download: the file's size and sha256                     -> IntegrityError
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge._exceptions import IntegrityError, ManifestExpired, RollbackRefused, StaleManifest, WrongModel
from edge.manifest import Manifest, verify


@dataclasses.dataclass(frozen=True)
class Expectations:
    """What this device will accept, beside a valid signature."""

    model: str
    alias: str = "production"
    installed_version: int | None = None
    # The alias sequence of the manifest that installed the current model (None: bundled, or a store
    # from before sequences): a lower version needs a signed rollback with a higher sequence.
    installed_sequence: int | None = None
    # The highest alias sequence this device has verified for (model, alias); None: none yet.
    seen_sequence: int | None = None
    installed_labels: Sequence[str] = ()
    runtimes: Sequence[str] = ("litert", "onnxruntime")
    allow_label_changes: bool = False
    max_clock_skew_s: float = 300.0


def check_manifest(
    raw: bytes | str | Mapping[str, Any],
    public_keys: Mapping[str, Any],
    expect: Expectations,
    *,
    now: dt.datetime | None = None,
) -> Manifest:
    """Steps 1-6: a manifest that is safe to download, or a `VerificationError` saying why not."""
    manifest = verify(raw, public_keys)
    now = now or dt.datetime.now(dt.UTC)
    skew = dt.timedelta(seconds=expect.max_clock_skew_s)
    what = f"{manifest.model}@{manifest.alias} v{manifest.version} (sequence {manifest.sequence})"
    if manifest.expires_at + skew < now:
        raise ManifestExpired(
            f"manifest for {what} expired at {manifest.expires_at.isoformat()}"
            f" (now {now.isoformat()}); the registry must re-issue it"
        )
    if manifest.issued_at - skew > now:
        raise ManifestExpired(f"manifest issued in the future ({manifest.issued_at.isoformat()}); check the clock")
    # Identity before any version logic: a signed answer to another question says nothing about ours.
    if manifest.model != expect.model:
        raise WrongModel(f"manifest is for model {manifest.model!r}; this app runs {expect.model!r}")
    if manifest.alias != expect.alias:
        raise WrongModel(
            f"manifest is for alias {manifest.alias!r} of {manifest.model!r}; this device follows {expect.alias!r}"
        )
    if expect.seen_sequence is not None and manifest.sequence < expect.seen_sequence:
        raise StaleManifest(
            f"manifest for {what} is older than sequence {expect.seen_sequence} already seen here"
            " (a replayed answer); refusing it"
        )
    if expect.installed_version is not None and manifest.version < expect.installed_version:
        if not manifest.rollback:
            raise RollbackRefused(
                f"manifest offers {what} below installed v{expect.installed_version} and is not a signed rollback"
            )
        if expect.installed_sequence is not None and manifest.sequence <= expect.installed_sequence:
            raise RollbackRefused(
                f"rollback manifest {what} is not newer than sequence {expect.installed_sequence} that installed"
                f" v{expect.installed_version} (a replayed rollback); refusing it"
            )
    if manifest.runtime not in expect.runtimes:
        raise WrongModel(f"manifest variant {manifest.variant} needs {manifest.runtime}; installed: {expect.runtimes}")
    old = list(expect.installed_labels)
    new = list(manifest.labels)
    if old and not expect.allow_label_changes and new[: len(old)] != old:
        i = next(i for i, label in enumerate(old) if i >= len(new) or new[i] != label)
        got = new[i] if i < len(new) else "<missing>"
        raise WrongModel(
            f"v{manifest.version} labels do not extend the installed ones (index {i}: {old[i]!r} -> {got!r});"
            " set allow_label_changes to accept"
        )
    return manifest


def check_file(path: Path, manifest: Manifest) -> None:
    """Step 5: the file on disk is exactly the one the manifest signs for."""
    size = path.stat().st_size
    if size != manifest.size:
        raise IntegrityError(f"{path}: {size} B, manifest says {manifest.size} B")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != manifest.sha256:
        raise IntegrityError(f"{path}: sha256 {digest.hexdigest()} differs from the manifest's {manifest.sha256}")
