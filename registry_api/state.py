"""Everything one app instance holds: settings, database, keys, caches and the warehouse writer."""

from __future__ import annotations

import dataclasses
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from edgeloop import tables
from registry_api import crud, db
from registry_api.core.config import RegistrySettings
from registry_api.core.ratelimit import RateLimiter
from registry_api.core.security import KeyRing, Role, parse_token, token_matches
from registry_api.errors import Unauthenticated
from registry_api.inbox import InboxLoader
from registry_api.manifests import ManifestService
from registry_api.telemetry import ServingClaim, WarehouseWriter

_MAX_VERIFIED = 10_000  # distinct tokens remembered between reloads; beyond that, checked each time


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role."""

    key_id: str
    name: str
    role: Role
    rate_per_s: float


@dataclasses.dataclass(frozen=True)
class _KeyRecord:
    principal: Principal
    token_hash: str


class KeyCache:
    """Active API keys in memory, reloaded every `ttl` seconds (and on an unknown id, at most once a second)."""

    def __init__(self, sessions: sessionmaker[Session], settings: RegistrySettings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._keys: dict[str, _KeyRecord] = {}
        # Tokens already checked against the keys as loaded: a poll skips the parse and the hash.
        # Emptied on every reload, so a revocation takes effect as before.
        self._verified: dict[str, Principal] = {}
        self._loaded = -1e9
        self._lock = threading.Lock()

    def _reload(self) -> None:
        with self.sessions() as session:
            rows = crud.active_keys(session)
            keys = {}
            for row in rows:
                role = Role(row.role)
                rate = row.rate_per_s or self.settings.rate_per_s.get(role.value, 10.0)
                keys[row.key_id] = _KeyRecord(Principal(row.key_id, row.name, role, rate), row.token_hash)
        self._keys = keys
        self._verified = {}
        self._loaded = time.monotonic()

    def by_id(self, key_id: str) -> Principal:
        """The active key with this id (a console session holds the id, never the token)."""
        if time.monotonic() - self._loaded > self.settings.keys_cache_ttl_s:
            with self._lock:
                self._reload()
        record = self._keys.get(key_id)
        if record is None:
            raise Unauthenticated("API key is unknown or revoked; log in again with an active key")
        return record.principal

    def authenticate(self, token: str) -> Principal:
        principal = self._verified.get(token)
        if principal is not None and time.monotonic() - self._loaded <= self.settings.keys_cache_ttl_s:
            return principal
        key_id = parse_token(token)
        if key_id is None:
            raise Unauthenticated("API key is malformed; expected elk_<id>_<secret> (see `edgeloop keys create`)")
        age = time.monotonic() - self._loaded
        if age > self.settings.keys_cache_ttl_s or (key_id not in self._keys and age > 1.0):
            with self._lock:
                self._reload()
        record = self._keys.get(key_id)
        if record is None or not token_matches(token, record.token_hash):
            raise Unauthenticated("API key is unknown or revoked")
        if len(self._verified) < _MAX_VERIFIED:
            self._verified[token] = record.principal
        return record.principal


@dataclasses.dataclass
class Registry:
    settings: RegistrySettings
    engine: Engine
    sessions: sessionmaker[Session]
    keyring: KeyRing
    manifests: ManifestService
    writer: WarehouseWriter
    limiter: RateLimiter
    keys: KeyCache
    loader: InboxLoader | None = None  # telemetry_sink=inbox with the embedded loader
    claim: str | None = None  # the DuckDB file this process serves telemetry into (ServingClaim)

    @classmethod
    def build(cls, settings: RegistrySettings) -> Registry:
        engine = db.make_engine(settings.database)
        db.init_db(engine)
        sessions = db.session_factory(engine)
        reads = db.read_session_factory(engine)  # the caches only read
        keyring = KeyRing.for_registry(settings)
        writer = WarehouseWriter(settings.warehouse, settings.telemetry_group_rows)
        loader = None
        if settings.telemetry_sink == "inbox" and settings.telemetry_loader == "embedded":

            def write(data: bytes) -> int:  # on the writer's thread, which owns the DuckDB connection
                return int(writer.call(lambda wh: wh.insert_new_ndjson(tables.TELEMETRY_EVENTS, data)).result())

            loader = InboxLoader(engine, write, settings.telemetry_load_rows)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            keyring=keyring,
            manifests=ManifestService(settings, reads, keyring),
            writer=writer,
            limiter=RateLimiter(),
            keys=KeyCache(reads, settings),
            loader=loader,
        )

    def start(self) -> None:
        if self.settings.telemetry_sink == "warehouse":
            self.claim = ServingClaim.take(self.settings.warehouse)
        if self.loader is not None:
            self.loader.start(self.settings.telemetry_load_interval_s)

    def close(self) -> None:
        if self.loader is not None:
            self.loader.stop()
        self.writer.close()
        ServingClaim.give_back(self.claim)
        self.claim = None
        self.engine.dispose()
