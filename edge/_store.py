"""The on-device model store: immutable versioned files and one small pointer file.

    <root>/models/<model>-v<version>-<sha16><suffix>   written once: temp + fsync + rename + dir fsync
    <root>/state.json                                    {"current", "previous", "trial", "loading",
                                                          "blocked", "manifest_etag", "sequences"}
    <root>/downloads/                                    partial downloads (resumable)

`state.json` is only ever replaced by an atomic rename, and a model file is
deleted only after the state stops pointing at it, so a crash at any instant
leaves either the old or the new state, each naming complete files.

A new model goes in as a *trial* (`stage`), beside the current one; `begin_load`
durably marks it as `loading` before the runtime touches it, and only a passed
health check makes it current (`commit_load`). A process that dies while loading
(a native crash, an OOM kill) leaves the marker behind: the next start (`recover`)
blocks that version and keeps serving the last good model, as A/B updaters do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from edge._exceptions import StoreError

log = logging.getLogger(__name__)

STATE_NAME = "state.json"
# Every point at which an install or revert can be interrupted; crash tests hook each one.
STEPS = ("copy_file", "fsync_file", "rename_file", "fsync_models_dir", "write_state", "rename_state", "gc")


@dataclasses.dataclass(frozen=True)
class InstalledModel:
    """One model file in the store and where it came from."""

    model: str
    version: int
    variant: str
    sha256: str
    size: int
    file: str  # name inside <root>/models
    labels: tuple[str, ...]
    source: Literal["bundled", "registry"] = "registry"
    rollback: bool = False  # installed from a signed rollback manifest
    installed_at: str = ""
    checked: bool = False  # loaded and passed its health check here at least once
    alias: str | None = None  # the alias whose manifest installed it (None: bundled, or an older store)
    sequence: int | None = None  # that manifest's alias sequence: a rollback below this model must be newer

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstalledModel:
        return cls(**{**data, "labels": tuple(data["labels"])})


@dataclasses.dataclass(frozen=True)
class BlockedVersion:
    """A version that failed its health check here: never installed again."""

    version: int
    sha256: str
    reason: str


@dataclasses.dataclass(frozen=True)
class StoreState:
    current: InstalledModel | None = None
    previous: InstalledModel | None = None
    trial: InstalledModel | None = None  # staged, not yet health-checked; never served before commit_load
    loading: InstalledModel | None = None  # being loaded without a passed check: set means "died trying"
    blocked: tuple[BlockedVersion, ...] = ()
    manifest_etag: str | None = None
    # "<model>/<alias>" -> the highest alias sequence verified here; it never goes down.
    sequences: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "current": self.current.as_json() if self.current else None,
            "previous": self.previous.as_json() if self.previous else None,
            "trial": self.trial.as_json() if self.trial else None,
            "loading": self.loading.as_json() if self.loading else None,
            "blocked": [dataclasses.asdict(b) for b in self.blocked],
            "manifest_etag": self.manifest_etag,
            "sequences": dict(self.sequences),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoreState:
        return cls(
            current=InstalledModel.from_json(data["current"]) if data.get("current") else None,
            previous=InstalledModel.from_json(data["previous"]) if data.get("previous") else None,
            trial=InstalledModel.from_json(data["trial"]) if data.get("trial") else None,
            loading=InstalledModel.from_json(data["loading"]) if data.get("loading") else None,
            blocked=tuple(BlockedVersion(**b) for b in data.get("blocked", [])),
            manifest_etag=data.get("manifest_etag"),
            sequences={str(k): int(v) for k, v in data.get("sequences", {}).items()},
        )

    def seen_sequence(self, model: str, alias: str) -> int | None:
        return self.sequences.get(sequence_key(model, alias))

    def with_sequence(self, model: str, alias: str, sequence: int) -> StoreState:
        """This state remembering `sequence` for (model, alias), unless a higher one is already known."""
        key = sequence_key(model, alias)
        if self.sequences.get(key, -1) >= sequence:
            return self
        return dataclasses.replace(self, sequences={**self.sequences, key: sequence})


def sequence_key(model: str, alias: str) -> str:
    return f"{model}/{alias}"  # neither a model nor an alias name may contain "/"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    # A rename is durable only once its directory entry is; not every OS lets us open a directory.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ModelStore:
    """Installs, reverts and remembers models under one folder. Safe against crashes at any step."""

    def __init__(self, root: str | Path, *, step_hook: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.models_dir = self.root / "models"
        self.downloads_dir = self.root / "downloads"
        self._hook = step_hook
        self._lock = threading.RLock()
        for folder in (self.root, self.models_dir, self.downloads_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # -- reading ----------------------------------------------------------------------

    def state(self) -> StoreState:
        """The committed state; a missing or unreadable pointer file reads as an empty store."""
        path = self.root / STATE_NAME
        try:
            return StoreState.from_json(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return StoreState()
        except (ValueError, KeyError, TypeError) as exc:
            # Only a disk fault can get here (the file is replaced atomically); the bundled model takes over.
            log.error("model store pointer %s is unreadable (%s); treating the store as empty", path, exc)
            return StoreState()

    def path_of(self, entry: InstalledModel) -> Path:
        return self.models_dir / entry.file

    def usable(self) -> InstalledModel | None:
        """The current model if its file is intact, else the previous one, else None."""
        state = self.state()
        for entry in (state.current, state.previous):
            if entry is not None and self._intact(entry):
                return entry
        return None

    def is_blocked(self, version: int, sha256: str) -> bool:
        return any(b.version == version and b.sha256 == sha256 for b in self.state().blocked)

    def _intact(self, entry: InstalledModel) -> bool:
        try:
            return self.path_of(entry).stat().st_size == entry.size
        except OSError:
            return False

    # -- writing ----------------------------------------------------------------------

    def _step(self, name: str) -> None:
        if self._hook is not None:
            self._hook(name)

    def _commit(self, state: StoreState) -> None:
        data = json.dumps(state.as_json(), indent=1, sort_keys=True).encode()
        tmp = self.root / f".{STATE_NAME}.tmp"
        self._step("write_state")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._step("rename_state")
        os.replace(tmp, self.root / STATE_NAME)
        fsync_dir(self.root)

    def file_name(self, model: str, version: int, sha256: str, suffix: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", model)
        return f"{safe}-v{version}-{sha256[:16]}{suffix}"

    def _write_file(self, src: Path, entry: InstalledModel, move: bool) -> None:
        final = self.models_dir / entry.file
        if not final.exists():
            tmp = self.models_dir / f".{entry.file}.tmp"
            self._step("copy_file")
            if move:
                os.replace(src, tmp)
            else:
                shutil.copyfile(src, tmp)
            self._step("fsync_file")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._step("rename_file")
            os.replace(tmp, final)
            self._step("fsync_models_dir")
            fsync_dir(self.models_dir)
        elif move:
            src.unlink(missing_ok=True)

    def _make_current(self, old: StoreState, entry: InstalledModel) -> StoreState:
        previous = old.current if old.current and old.current.file != entry.file else old.previous
        state = dataclasses.replace(old, current=entry, previous=previous)
        if entry.alias is not None and entry.sequence is not None:
            state = state.with_sequence(entry.model, entry.alias, entry.sequence)  # same commit as the swap
        return state

    def install(self, src: Path, entry: InstalledModel, *, move: bool = False) -> StoreState:
        """Make `src` the current model at once (the old current becomes previous). `move` consumes `src`.

        The updater installs through `stage` / `commit_load` instead, so nothing unchecked becomes current.
        """
        with self._lock:
            self._write_file(src, entry, move)
            stamped = dataclasses.replace(entry, installed_at=dt.datetime.now(dt.UTC).isoformat())
            state = self._make_current(self.state(), stamped)
            self._commit(state)
            self._gc(state)
            return state

    def stage(self, src: Path, entry: InstalledModel, *, move: bool = False) -> StoreState:
        """Put `src` in the store as the trial model; current and previous stay as they are."""
        with self._lock:
            self._write_file(src, entry, move)
            stamped = dataclasses.replace(entry, installed_at=dt.datetime.now(dt.UTC).isoformat())
            state = dataclasses.replace(self.state(), trial=stamped)
            self._commit(state)
            self._gc(state)
            return state

    def begin_load(self, entry: InstalledModel) -> None:
        """Durably mark `entry` as being loaded; call right before a load whose check has never passed."""
        with self._lock:
            self._commit(dataclasses.replace(self.state(), loading=self._named(entry)))

    def commit_load(self, entry: InstalledModel) -> StoreState:
        """`entry` passed its check: it becomes (or stays) current, marked checked, and the marker goes."""
        with self._lock:
            old = self.state()
            checked = dataclasses.replace(self._named(entry), checked=True)
            if old.current is not None and old.current.file == entry.file:
                state = dataclasses.replace(old, current=checked)
            else:
                state = self._make_current(old, checked)
            if old.previous is not None and old.previous.file == entry.file and state.previous is old.previous:
                state = dataclasses.replace(state, previous=None)  # it is current now, not also previous
            state = dataclasses.replace(state, trial=None, loading=None)
            self._commit(state)
            self._gc(state)
            return state

    def fail_load(self, entry: InstalledModel, reason: str, *, block: bool = True) -> StoreState:
        """`entry` failed (or killed the process) while loading: drop it, block it unless `block` is False.

        A failed current gives way to previous, as `revert` does; a failed trial never served at all.
        """
        with self._lock:
            old = self.state()

            def unless_failed(e: InstalledModel | None) -> InstalledModel | None:
                return None if e is not None and e.file == entry.file else e

            current, previous = unless_failed(old.current), unless_failed(old.previous)
            if current is None and old.current is not None:  # the failed one was current
                current, previous = previous, None
            blocked = old.blocked
            if block and not any(b.version == entry.version and b.sha256 == entry.sha256 for b in blocked):
                blocked = (*blocked, BlockedVersion(entry.version, entry.sha256, reason))
            state = dataclasses.replace(
                old, current=current, previous=previous, trial=unless_failed(old.trial), loading=None, blocked=blocked
            )
            self._commit(state)
            self._gc(state)
            return state

    def recover(self) -> InstalledModel | None:
        """At start-up: a `loading` marker means the last process died loading that model; block it, return it."""
        with self._lock:
            died = self.state().loading
            if died is None:
                return None
            self.fail_load(died, "the process died while loading or checking it (native crash or kill)")
            return died

    def _named(self, entry: InstalledModel) -> InstalledModel:
        """The stored record of `entry`'s file (with its installed_at), else `entry` itself."""
        state = self.state()
        for known in (state.trial, state.current, state.previous):
            if known is not None and known.file == entry.file:
                return known
        return entry

    def revert(self, reason: str) -> StoreState:
        """Put `previous` back as current (none if there is none) and block the failed current version for good."""
        with self._lock:
            old = self.state()
            if old.current is None:
                raise StoreError(f"nothing to revert in {self.root}: no current model")
            failed = old.current
            blocked = (*old.blocked, BlockedVersion(failed.version, failed.sha256, reason))
            state = dataclasses.replace(old, current=old.previous, previous=None, blocked=blocked)
            self._commit(state)
            self._gc(state)
            return state

    def block(self, version: int, sha256: str, reason: str) -> None:
        with self._lock:
            old = self.state()
            if not any(b.version == version and b.sha256 == sha256 for b in old.blocked):
                self._commit(dataclasses.replace(old, blocked=(*old.blocked, BlockedVersion(version, sha256, reason))))

    def remember_sequence(self, model: str, alias: str, sequence: int) -> None:
        """Keep the highest verified alias sequence; a lower one later is a replay (see edge._verify)."""
        with self._lock:
            old = self.state()
            state = old.with_sequence(model, alias, sequence)
            if state is not old:
                self._commit(state)

    def set_etag(self, etag: str | None) -> None:
        with self._lock:
            old = self.state()
            if old.manifest_etag != etag:
                self._commit(dataclasses.replace(old, manifest_etag=etag))

    def _gc(self, state: StoreState) -> None:
        self._step("gc")
        keep = {e.file for e in (state.current, state.previous, state.trial, state.loading) if e is not None}
        for path in self.models_dir.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)
