"""The API's request and response bodies: Base / Create / Public families, with OpenAPI examples."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.variants import Runtime

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
ALIAS_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
VERSION_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$"  # what rollout.parse_version compares, ASCII digits only


class Targeting(BaseModel):
    """Which devices an alias's target is meant for; an empty list matches every device."""

    model_config = ConfigDict(extra="forbid")

    platforms: list[str] = Field(default_factory=list, max_length=32, examples=[["android"]])
    runtimes: list[Runtime] = Field(default_factory=list, max_length=2, examples=[["litert"]])
    min_app_version: str | None = Field(default=None, max_length=32, examples=["2.4.0"])
    device_classes: list[str] = Field(default_factory=list, max_length=64, examples=[["pixel-6a", "galaxy-a54"]])


class TargetingUpdate(Targeting):
    """Targeting as a publisher sends it: checked strictly (stored targeting is read as it was written)."""

    min_app_version: str | None = Field(
        default=None,
        max_length=32,
        pattern=VERSION_PATTERN,
        description="Dotted numbers (1 to 4 parts); devices whose app_version is lower, or unknown, are not matched.",
        examples=["2.4.0"],
    )


class AliasBase(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1, examples=[7])
    rollout_percent: int = Field(default=100, ge=0, le=100, examples=[10])
    targeting: Targeting = Field(default_factory=Targeting)
    latency_budget_ms: float | None = Field(
        default=None, gt=0, le=3_600_000, description="Variant choice budget; default from settings.", examples=[25.0]
    )


class AliasUpdate(AliasBase):
    """Point an alias at a version; the old target is kept as `previous_version` for rollback."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"version": 7, "rollout_percent": 10, "targeting": {"platforms": ["android"]}, "reason": "canary"}
            ]
        },
    )

    targeting: TargetingUpdate = Field(default_factory=TargetingUpdate)
    reason: str | None = Field(default=None, max_length=1000, description="Why; kept in the audit log.")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "crash rate up 3x"}]})

    reason: str | None = Field(default=None, max_length=1000)


class AliasPublic(AliasBase):
    model: str
    name: str = Field(examples=["production"])
    previous_version: int | None = Field(examples=[6])
    rollback: bool = Field(description="True after a rollback move: manifests say rollback=true.")
    updated_at: dt.datetime
    updated_by: str = Field(description="Name of the API key that made the change.")


class VariantPublic(BaseModel):
    variant: str = Field(examples=["tflite_int8"])
    file: str = Field(examples=["model_int8.tflite"])
    sha256: str = Field(examples=["3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"])
    size: int = Field(examples=[524288])
    runtime: str = Field(examples=["litert"])
    quantization: str = Field(examples=["int8"])
    publishable: bool = Field(description="False: stored for the record, never served.")
    reason: str = ""


class VersionPublic(BaseModel):
    model: str = Field(examples=["shelf-products"])
    version: int = Field(examples=[7], description="Assigned by the registry, monotonic per model.")
    digest: str = Field(description="sha256 of the canonical model card: same package, same digest, same version.")
    source_uri: str | None = Field(description="Where the package was registered from (None for uploads).")
    created_at: dt.datetime
    created_by: str
    run_version: str = Field(description="The training run's own version id from the card.")
    gate_verdict: str = Field(examples=["pass"])
    labels: list[str]
    variants: list[VariantPublic]


class PublishByUri(BaseModel):
    """Register a package already in storage: a folder holding model_card.json and its files."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"package_uri": "gs://acme-models/shelf-products/run-42/"}]}
    )

    package_uri: str = Field(min_length=1, max_length=2048)


class ModelPublic(BaseModel):
    name: str = Field(examples=["shelf-products"])
    latest_version: int = Field(examples=[7])
    versions: int = Field(examples=[7])
    aliases: dict[str, int] = Field(examples=[{"production": 6, "canary": 7}])


class AuditPublic(BaseModel):
    id: int
    model: str
    alias: str | None
    action: Literal["publish", "set_alias", "rollback"] | str
    actor: str = Field(description="API key name.")
    at: dt.datetime
    from_version: int | None
    to_version: int | None
    from_rollout: int | None
    to_rollout: int | None
    reason: str | None


class PublicKeyPublic(BaseModel):
    key_id: str = Field(examples=["3f9c2a1b7d4e5f60"])
    public_key: str = Field(description="Base64 of the 32 raw Ed25519 public key bytes.")
    pem: str
    current: bool = Field(description="True for the key signing new manifests.")


class KeysPublic(BaseModel):
    keys: list[PublicKeyPublic]


class BenchmarkStored(BaseModel):
    benchmark_id: str
    created: bool = Field(description="False when this benchmark_id was already stored (a resend).")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict, examples=[{"database": "ok", "storage": "ok"}])


class ErrorBody(BaseModel):
    """Every error: a sentence saying what is wrong and what to do (for invalid fields: which, and why)."""

    detail: str = Field(examples=["model 'shelf-products' has no alias 'canary'"])


class ApiKeyPublic(BaseModel):
    key_id: str
    name: str
    role: str
    rate_per_s: float | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None
