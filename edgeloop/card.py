"""The model package contract: a folder with `model_card.json` and one file per variant.

Training writes the first card (labels, input spec, metrics, lineage), the gate adds its
report, conversion adds the variants table; the registry re-checks every file against it
before publishing. It lives in the kernel because every stage reads it; it has no
TensorFlow dependency so anyone can read a card, and `read_card` raises one `CardError`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.manifest import InputSpec
from edgeloop.errors import CardError, NotFound

CARD_NAME = "model_card.json"
SCHEMA_VERSION = 1


class Lineage(BaseModel):
    """Where a model came from."""

    dataset_version: str
    dataset_uri: str | None = None
    run_id: str
    code_commit: str | None = None
    parent_model: str | None = Field(default=None, description="Model URI it was warm-started from.")
    backbone_source: str | None = None


class GateCheck(BaseModel):
    name: str
    threshold: float | None = None
    value: float | None = None
    passed: bool
    detail: str = ""


class GateReport(BaseModel):
    verdict: str = Field(description="pass, fail or forced")
    checks: list[GateCheck] = Field(default_factory=list)
    baseline: str | None = Field(default=None, description="Production model compared against, if any.")
    forced_by: str | None = None
    forced_reason: str | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict in ("pass", "forced")


class VariantLatency(BaseModel):
    p50_ms: float
    p90_ms: float
    p99_ms: float
    init_ms: float
    peak_mem_mb: float
    threads: int | None = None
    runs: int


class VariantEntry(BaseModel):
    """One converted file and the evidence that it works."""

    variant: str
    file: str = Field(description="File name inside the package folder.")
    sha256: str
    size: int
    runtime: str
    quantization: str
    input_dtype: str
    output_dtype: str
    weights_quantized: bool
    accuracy: float | None = None
    macro_f1: float | None = None
    agreement: float | None = Field(default=None, description="Top-1 agreement with the Keras model.")
    max_abs_diff: float | None = None
    class_recall: dict[str, float] = Field(default_factory=dict)
    latency: VariantLatency | None = None
    publishable: bool
    reason: str = ""
    # Added by conversion: the evidence behind `publishable`.
    input_scale: float | None = Field(default=None, description="Input quantization: real = scale * (q - zero_point).")
    input_zero_point: int | None = None
    output_scale: float | None = None
    output_zero_point: int | None = None
    inspection: dict[str, Any] = Field(default_factory=dict, description="What the file holds, read back from it.")
    checks: list[GateCheck] = Field(default_factory=list, description="Every parity-gate check, passed or not.")
    export_seconds: float | None = None


class ConversionInfo(BaseModel):
    """How the variants were made and judged."""

    converted_at: dt.datetime
    options: dict[str, Any] = Field(default_factory=dict)
    gate_ignored: bool = Field(default=False, description="True when --ignore-gate overrode a failed run gate.")
    run_gate_verdict: str | None = None
    n_eval_images: int
    n_representative_images: int
    keras_accuracy: float
    keras_macro_f1: float
    keras_class_recall: dict[str, float] = Field(default_factory=dict)
    host: dict[str, str] = Field(default_factory=dict, description="CPU and library versions of the measuring host.")


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str = Field(description="The training run's version id; the registry assigns its own number on publish.")
    created_at: dt.datetime
    labels: list[str]
    input: InputSpec
    metrics: dict[str, Any] = Field(default_factory=dict)
    gate: GateReport | None = None
    lineage: Lineage
    training: dict[str, Any] = Field(
        default_factory=dict, description="How the model was trained: backbone, every training setting, notes."
    )
    variants: list[VariantEntry] = Field(default_factory=list)
    conversion: ConversionInfo | None = None

    def publishable_variants(self) -> list[VariantEntry]:
        return [v for v in self.variants if v.publishable]


def read_card(folder: str | Path) -> ModelCard:
    """The card of a run or package folder (local or any storage URI); `CardError` if missing or malformed."""
    from edgeloop import storage

    uri = storage.join(str(folder), CARD_NAME)
    try:
        raw = storage.read_bytes(uri)
    except NotFound:
        raise CardError(
            f"{str(folder)!r} has no {CARD_NAME}: pass a run folder written by `edgeloop train` "
            "(workspace/runs/<run_id>) or a package folder written by `edgeloop convert`"
        ) from None
    try:
        return ModelCard.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CardError(
            f"{uri} is not a model card ({exc.error_count()} problem(s), first: {where + ': ' if where else ''}"
            f"{first['msg']}); re-run the step that wrote it (`edgeloop train`, `edgeloop convert`)"
        ) from None


def write_card(folder: str | Path, card: ModelCard) -> None:
    from edgeloop import storage

    storage.write_text(storage.join(str(folder), CARD_NAME), card.model_dump_json(indent=2) + "\n")
