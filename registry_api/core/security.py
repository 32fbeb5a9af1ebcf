"""API keys (hashed, with a public prefix id) and the Ed25519 key ring that signs manifests."""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeloop import storage
from edgeloop.errors import ConfigError

if TYPE_CHECKING:
    from registry_api.core.config import RegistrySettings

log = logging.getLogger(__name__)

TOKEN_PREFIX = "elk"


class Role(enum.StrEnum):
    """What a key may do: publishers publish and move aliases, devices poll and send telemetry, qa benchmarks."""

    publisher = "publisher"
    device = "device"
    reader = "reader"
    qa = "qa"


class Scope(enum.StrEnum):
    """A family of routes; each route requires one."""

    read = "read"  # metadata: models, versions, aliases, audit
    publish = "publish"  # publish versions, move aliases
    poll = "poll"  # manifests and artifact downloads
    report = "report"  # field telemetry
    benchmark = "benchmark"  # benchmark uploads: they steer variant choice for a whole device class


# Devices do not get `benchmark`: one device key would otherwise set the latency every device of its
# class is served by. QA measures on target devices with a qa key (read and poll to fetch the variants).


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.publisher: frozenset({Scope.read, Scope.publish, Scope.poll, Scope.benchmark}),
    Role.device: frozenset({Scope.poll, Scope.report}),
    Role.reader: frozenset({Scope.read, Scope.poll}),
    Role.qa: frozenset({Scope.read, Scope.poll, Scope.benchmark}),
}


@dataclasses.dataclass(frozen=True)
class NewKey:
    """A freshly minted key: `token` is shown once, only `key_id` and `hash` are stored."""

    key_id: str
    token: str
    hash: str


def hash_token(token: str) -> str:
    """sha256 of the token: enough for 256-bit random secrets (no password stretching needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_key() -> NewKey:
    """A token `elk_<id>_<secret>`: the id finds the row, the secret carries 256 bits of entropy."""
    key_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id, token, hash_token(token))


def parse_token(token: str) -> str | None:
    """The key id inside a token, or None when it is not shaped like one of ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


# --------------------------------------------------------------------------- signing keys


def _raw_public(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def default_key_id(public_key: Any) -> str:
    """A stable id for a public key: first 16 hex characters of the sha256 of its raw bytes."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def load_private_key(spec: str) -> Any:
    """An Ed25519 private key from a PEM file path or base64 of the 32-byte seed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(spec)
    if len(spec) < 4096 and path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"signing key {spec!r} is not Ed25519; generate one with `openssl genpkey -algorithm ed25519`"
            )
        return key
    try:
        seed = base64.b64decode(spec, validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(
            "EDGELOOP_REGISTRY_SIGNING_KEY is neither an existing PEM file nor base64 of a 32-byte Ed25519 seed"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def generate_key_file(path: Path) -> Any:
    """Create a new Ed25519 key as PEM at `path` (mode 0600) and return it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two workers starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_private_key(str(path))
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def key_file(spec: str, default_path: Path) -> Path | None:
    """The file the signing key is read from, or None when `spec` carries the key itself (base64 seed)."""
    if not spec:
        return default_path
    path = Path(spec)
    return path if len(spec) < 4096 and path.is_file() else None


def check_custody(key_path: Path, settings: RegistrySettings) -> None:
    """Refuse a key file the registry itself could hand out: inside a package root or the artifacts store.

    A publisher registers packages from the roots and devices download from the artifacts
    store; a key inside either is one symlink, copy or misconfiguration away from leaking.
    """
    key = key_path.resolve()
    places = [("package root", root) for root in settings.roots] + [("artifacts store", settings.artifacts)]
    for what, uri in places:
        if not storage.is_local(uri):
            continue
        folder = storage.local_path(uri).resolve()
        if key == folder or folder in key.parents:
            raise ConfigError(
                f"the manifest signing key {key} is inside the {what} {uri!r}, where a publisher or a device could "
                "reach it; keep the key outside every package root and the artifacts store "
                "(EDGELOOP_REGISTRY_SIGNING_KEY=/path/outside, or base64 of the seed from a secret)"
            )
    try:
        mode = key.stat().st_mode
    except FileNotFoundError:
        return  # generated on first start, with mode 0600
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the signing key %s is readable by other users (mode %o); chmod 600 it", key, mode & 0o777)


@dataclasses.dataclass(frozen=True)
class PublicKeyInfo:
    key_id: str
    public_key_b64: str
    public_key_pem: str
    current: bool


class KeyRing:
    """The signing key in use plus every public key devices may pin (rotation)."""

    def __init__(self, private_key: Any, key_id: str, extra_public: dict[str, str] | None = None) -> None:
        from edge.manifest import load_public_key

        self.private_key = private_key
        self.key_id = key_id
        self.public_keys: dict[str, Any] = {key_id: private_key.public_key()}
        for kid, text in (extra_public or {}).items():
            if kid != key_id:
                self.public_keys[kid] = load_public_key(text)

    @classmethod
    def from_settings(cls, spec: str, key_id: str, extra_public: dict[str, str], default_path: Path) -> KeyRing:
        """Load the configured key, or the workspace key, creating (and logging) it on first use."""
        if spec:
            key = load_private_key(spec)
        elif default_path.is_file():
            key = load_private_key(str(default_path))
        else:
            key = generate_key_file(default_path)
            log.warning(
                "generated a new manifest signing key at %s; pin its public key on devices: %s",
                default_path,
                base64.b64encode(_raw_public(key.public_key())).decode(),
            )
        return cls(key, key_id or default_key_id(key.public_key()), extra_public)

    @classmethod
    def for_registry(cls, settings: RegistrySettings) -> KeyRing:
        """The key ring a registry signs with, after checking where its key is kept."""
        path = key_file(settings.signing_key, settings.default_key_path)
        if path is not None:
            check_custody(path, settings)
        return cls.from_settings(
            settings.signing_key, settings.signing_key_id, settings.extra_public_keys, settings.default_key_path
        )

    def sign(self, payload: bytes) -> bytes:
        signature: bytes = self.private_key.sign(payload)
        return signature

    def describe(self) -> list[PublicKeyInfo]:
        from cryptography.hazmat.primitives import serialization

        out = []
        for kid, pub in self.public_keys.items():
            pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            out.append(PublicKeyInfo(kid, base64.b64encode(_raw_public(pub)).decode(), pem, kid == self.key_id))
        return out
