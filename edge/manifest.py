"""The manifest a device receives when it polls: one schema, built by the registry, verified here.

The signature is Ed25519 over the canonical JSON of every field but `signature`
(keys sorted, no spaces, UTF-8). Verification works on the dict received from the
wire, never on a re-serialised model, so nothing the parser normalises can change
what was signed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge._exceptions import ManifestError as ManifestError  # re-exported: its historic home
from edge.variants import Quantization, Runtime

SCHEMA_VERSION = 1


class InputSpec(BaseModel):
    """What the model takes: raw RGB pixels at a fixed size (preprocessing is inside the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    height: int = Field(gt=0, examples=[96])
    width: int = Field(gt=0, examples=[96])
    channels: Literal[3] = 3
    dtype: Literal["float32", "uint8", "int8"] = Field(examples=["uint8"])
    # For a quantized input: real_value = scale * (q - zero_point); real values are pixels in 0..255.
    scale: float | None = None
    zero_point: int | None = None
    layout: Literal["NHWC"] = "NHWC"


class Manifest(BaseModel):
    """A signed pointer to one model file for one device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    model: str = Field(examples=["shelf-products"])
    version: int = Field(ge=1, examples=[7])
    alias: str = Field(examples=["production"])
    variant: str = Field(examples=["tflite_int8"])
    runtime: Runtime
    quantization: Quantization
    artifact_url: str = Field(examples=["https://registry.example/v1/artifacts/3a7b…"])
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    labels: list[str]
    input: InputSpec
    issued_at: dt.datetime
    expires_at: dt.datetime
    rollback: bool = Field(default=False, description="True when the registry deliberately serves an older version.")
    rollout_percent: int = Field(default=100, ge=0, le=100)
    sequence: int = Field(
        default=0,
        ge=0,
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


def verify(raw: bytes | str | Mapping[str, Any], public_keys: Mapping[str, Any]) -> Manifest:
    """Check the signature with the pinned key named by `key_id`, then parse.

    `public_keys` maps key id to an `Ed25519PublicKey` (or its 32 raw bytes).
    Raises `ManifestError` for anything that is not a manifest signed by a pinned key.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = json.loads(raw) if isinstance(raw, bytes | str) else dict(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    key_id = data.get("key_id")
    if not isinstance(key_id, str) or key_id not in public_keys:
        raise ManifestError(f"manifest signed with unknown key {key_id!r}; pinned keys: {sorted(public_keys)}")
    key = public_keys[key_id]
    if isinstance(key, bytes):
        key = Ed25519PublicKey.from_public_bytes(key)
    try:
        signature = base64.b64decode(str(data.get("signature", "")), validate=True)
        key.verify(signature, canonical_bytes(data))
    except (InvalidSignature, ValueError):
        raise ManifestError("manifest signature does not verify; refusing it") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"signed manifest does not match the schema: {exc}") from None


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
