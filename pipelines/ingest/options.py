"""Typed options for ingest, and the argv parser that `run(argv)` and the CLI share.

Flags ingest does not know are Beam's: they pass through untouched to `PipelineOptions`
(`--project`, `--region`, `--temp_location`, `--flink_master`, ...).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgeloop.errors import ConfigError

from .images import ImageLimits
from .rules import SplitRatios, parse_version

RunningMode = Literal["in_memory", "multi_threading", "multi_processing"]
DIRECT_RUNNERS = frozenset({"directrunner", "direct", "fnapirunner"})


class IngestOptions(BaseModel):
    """Everything one ingest run needs. Field descriptions double as CLI help."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str = Field(
        description="Folder or gs:// prefix with one sub-folder per product, or a .csv/.jsonl catalogue of uri,label."
    )
    output: str = Field(description="Dataset root: versions are written to <output>/vNNNN/.")
    dataset_version: str | None = Field(
        default=None, description="Version to write (vNNNN); default: the next free one."
    )
    previous: str | None = Field(
        default=None,
        description="Earlier version to extend incrementally (vNNNN under --output, or its folder/dataset.json URI).",
    )
    max_side: int | None = Field(
        default=None, ge=16, description="Shrink so the longer side is at most this many pixels."
    )
    jpeg_quality: int = Field(default=90, ge=1, le=100, description="JPEG quality when a photo has to be re-encoded.")
    min_side: int = Field(default=32, ge=1, description="Reject photos with a side shorter than this (pixels).")
    max_bytes: int = Field(default=50 * 1024 * 1024, ge=1, description="Reject files larger than this (bytes).")
    max_pixels: int = Field(default=50_000_000, ge=1, description="Reject photos with more pixels than this.")
    eval_fraction: float = Field(default=0.2, gt=0, lt=1, description="Share of photos in eval, by content hash.")
    test_fraction: float = Field(default=0.0, ge=0, lt=1, description="Share of photos in test, by content hash.")
    min_per_class: int = Field(default=10, ge=0, description="Warn about products with fewer photos than this.")
    shard_mb: int = Field(default=128, ge=1, description="Target shard size in MiB.")
    min_shards: int | None = Field(
        default=None, ge=1, description="Cut a run into at least this many shards (default: 8 per local worker)."
    )
    runner: str = Field(
        default="DirectRunner", description="Beam runner: DirectRunner, DataflowRunner, FlinkRunner, ..."
    )
    num_workers: int = Field(default=2, ge=1, description="DirectRunner worker processes (direct_num_workers).")
    running_mode: RunningMode = Field(
        default="multi_processing", description="DirectRunner mode (direct_running_mode)."
    )
    warehouse: str | None = Field(default=None, description="Warehouse URL (default: from settings).")
    record: bool = Field(default=True, description="Write the datasets/dataset_classes warehouse rows.")
    beam_args: tuple[str, ...] = Field(
        default=(), description="Extra flags passed untouched to Beam's PipelineOptions."
    )

    @field_validator("dataset_version")
    @classmethod
    def _version_form(cls, value: str | None) -> str | None:
        if value is not None:
            parse_version(value)
        return value

    @field_validator("input", "output")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _fractions(self) -> IngestOptions:
        self.ratios  # noqa: B018 - raises ValueError with the fix when the fractions do not fit
        return self

    @property
    def ratios(self) -> SplitRatios:
        return SplitRatios(
            train=round(1.0 - self.eval_fraction - self.test_fraction, 12),
            eval=self.eval_fraction,
            test=self.test_fraction,
        )

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(min_side=self.min_side, max_bytes=self.max_bytes, max_pixels=self.max_pixels)

    @property
    def is_direct(self) -> bool:
        return self.runner.lower() in DIRECT_RUNNERS

    @property
    def work_units(self) -> int:
        """At least this many shards per run, so every worker has work."""
        if self.min_shards is not None:
            return self.min_shards
        # Shards are the unit of work of the write step and the runner deals them out in turn:
        # 8 per worker keeps the last worker from finishing much later than the others.
        return 8 * self.num_workers if self.is_direct else 1


def build(**values: object) -> IngestOptions:
    """`IngestOptions(**values)`, with a validation error turned into one readable `ConfigError`."""
    try:
        return IngestOptions.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in e['loc']).replace('_', '-') or 'options'}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid ingest options: {problems}") from None


def parser() -> argparse.ArgumentParser:
    """The argparse parser for `run(argv)`; unknown flags are left for Beam."""
    p = argparse.ArgumentParser(prog="ingest", description="Photos → sharded TFRecords + dataset.json.")
    fields = IngestOptions.model_fields
    p.add_argument("--input", required=True, help=fields["input"].description)
    p.add_argument("--output", required=True, help=fields["output"].description)
    p.add_argument("--version", dest="dataset_version", help=fields["dataset_version"].description)
    p.add_argument("--previous", help=fields["previous"].description)
    for name in ("max_side", "jpeg_quality", "min_side", "max_bytes", "max_pixels", "min_per_class", "shard_mb",
                 "min_shards", "num_workers"):  # fmt: skip
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, help=fields[name].description)
    for name in ("eval_fraction", "test_fraction"):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, help=fields[name].description)
    p.add_argument("--runner", help=fields["runner"].description)
    p.add_argument("--running-mode", dest="running_mode", help=fields["running_mode"].description)
    p.add_argument("--warehouse", help=fields["warehouse"].description)
    p.add_argument(
        "--no-warehouse", dest="record", action="store_false", default=None, help="Do not write warehouse rows."
    )
    return p


def parse_argv(argv: Sequence[str] | None) -> IngestOptions:
    """Our flags into `IngestOptions`; everything else into `beam_args`."""
    known, rest = parser().parse_known_args(list(argv or []))
    values = {k: v for k, v in vars(known).items() if v is not None}
    return build(**values, beam_args=tuple(rest))


__all__ = ["DIRECT_RUNNERS", "IngestOptions", "RunningMode", "build", "parse_argv", "parser"]
