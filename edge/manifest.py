"""The manifest a device receives when it polls: one schema, built by the registry, verified here.

The signature is Ed25519 over the canonical JSON of every field but `signature`
(keys sorted, no spaces, UTF-8; edge/PROTOCOL.md pins every rule). Verification works on
the object received from the wire, and the schema is then read from exactly the signed
bytes, so nothing a parser normalises can change what was signed. The wire text is
strict: UTF-8 only, no duplicate keys, no NaN or Infinity — each a way for two parsers
(this one and another SDK's) to see different manifests behind one signature.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from edge._exceptions import ManifestError as ManifestError  # re-exported: its historic home
from edge.variants import Quantization, Runtime

SCHEMA_VERSION = 1
# Integers a JavaScript client reads exactly (RFC 8259 / I-JSON): every counter and size stays inside.
MAX_INT = 2**53 - 1


class InputSpec(BaseModel):
    """What the model takes: raw RGB pixels at a fixed size (preprocessing is inside the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    height: int = Field(gt=0, le=MAX_INT, examples=[96])
    width: int = Field(gt=0, le=MAX_INT, examples=[96])
    channels: Literal[3] = 3
    dtype: Literal["float32", "uint8", "int8"] = Field(examples=["uint8"])
    # For a quantized input: real_value = scale * (q - zero_point); real values are pixels in 0..255.
    scale: float | None = None
    zero_point: int | None = Field(default=None, ge=-MAX_INT, le=MAX_INT)
    layout: Literal["NHWC"] = "NHWC"


class Manifest(BaseModel):
    """A signed pointer to one model file for one device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    model: str = Field(examples=["shelf-products"])
    version: int = Field(ge=1, le=MAX_INT, examples=[7])
    alias: str = Field(examples=["production"])
    variant: str = Field(examples=["tflite_int8"])
    runtime: Runtime
    quantization: Quantization
    artifact_url: str = Field(examples=["https://registry.example/v1/artifacts/3a7b…"])
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0, le=MAX_INT)
    labels: list[str]
    input: InputSpec
    # Aware: a signed timestamp without a zone has no meaning here (and cannot be compared with now).
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    rollback: bool = Field(default=False, description="True when the registry deliberately serves an older version.")
    rollout_percent: int = Field(default=100, ge=0, le=100)
    sequence: int = Field(
        default=0,
        ge=0,
        le=MAX_INT,
        description=(
            "The alias's counter: grows on every write to the alias (move, rollout change, rollback) and to "
            "production, which a non-production alias falls back on. A device refuses a manifest whose "
            "sequence is below one it has seen, so an old signed rollback cannot be replayed."
        ),
    )
    served: Literal["target", "previous", "production"] = Field(
        default="target",
        description=(
            "Why this version: the alias's target (device inside the rollout and targeting), the alias's "
            "previous target, or production's target (device outside the rollout or targeting)."
        ),
    )
    key_id: str = Field(examples=["2026-11"])
    signature: str = ""

    def signed_payload(self) -> dict[str, Any]:
        """The JSON object that gets signed (every field but `signature`)."""
        data = self.model_dump(mode="json")
        data.pop("signature")
        return data


def canonical_bytes(payload: Mapping[str, Any]) -> bytes:
    """Canonical JSON of a manifest object, without its signature."""
    body = {k: v for k, v in payload.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(manifest: Manifest, private_key: Any) -> dict[str, Any]:
    """The manifest as a JSON object with its Ed25519 signature (base64), ready to send."""
    payload = manifest.signed_payload()
    signature = private_key.sign(canonical_bytes(payload))
    return {**payload, "signature": base64.b64encode(signature).decode("ascii")}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ManifestError(f"manifest repeats the key {key!r}; refusing it (parsers disagree on which one counts)")
        data[key] = value
    return data


def _no_constant(name: str) -> Any:
    raise ManifestError(f"manifest contains {name}, which is not JSON; refusing it")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ManifestError(f"manifest number {text[:40]} overflows a double; refusing it")
    return value


def parse(raw: bytes | str) -> Any:
    """The wire text as JSON, strictly: UTF-8 without BOM, unique keys, finite numbers."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from None


def verify(raw: bytes | str | Mapping[str, Any], public_keys: Mapping[str, Any]) -> Manifest:
    """Check the signature with the pinned key named by `key_id`, then parse.

    `public_keys` maps key id to an `Ed25519PublicKey` (or its 32 raw bytes).
    Raises `ManifestError` for anything that is not a manifest signed by a pinned key.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = parse(raw) if isinstance(raw, bytes | str) else dict(raw)
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    key_id = data.get("key_id")
    if not isinstance(key_id, str) or key_id not in public_keys:
        raise ManifestError(f"manifest signed with unknown key {key_id!r}; pinned keys: {sorted(public_keys)}")
    key = public_keys[key_id]
    if isinstance(key, bytes):
        key = Ed25519PublicKey.from_public_bytes(key)
    try:
        text = data.get("signature", "")
        signature = base64.b64decode(str(text), validate=True)
        if base64.b64encode(signature).decode("ascii") != text:
            # Non-zero padding bits: another spelling of the same signature, which other decoders may refuse.
            raise ValueError("signature is not canonical base64")
        signed = canonical_bytes(data)
        key.verify(signature, signed)
    except (InvalidSignature, ValueError):
        raise ManifestError("manifest signature does not verify; refusing it") from None
    try:
        # Strict JSON types from the signed bytes: 7 is not "7", true is not 1, a time is a string with a zone.
        manifest = Manifest.model_validate_json(signed, strict=True)
    except ValidationError as exc:
        raise ManifestError(f"signed manifest does not match the schema: {exc}") from None
    return manifest.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})


def load_public_key(text: str) -> Any:
    """An Ed25519 public key from PEM text or base64 of its 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ManifestError("public key is not Ed25519")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))
