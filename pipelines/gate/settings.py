"""Gate thresholds, read from `EDGELOOP_GATE_*` variables (or passed in by code)."""

from __future__ import annotations

import functools

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgeloop.settings import load


class GateSettings(BaseSettings):
    """What a model must achieve on the eval split to go on to conversion."""

    model_config = SettingsConfigDict(env_prefix="EDGELOOP_GATE_", env_file=".env", extra="ignore")

    min_accuracy: float = Field(default=0.90, ge=0.0, le=1.0)
    min_macro_f1: float = Field(default=0.90, ge=0.0, le=1.0)
    min_class_recall: float = Field(default=0.75, ge=0.0, le=1.0, description="Floor for every class, old or new.")
    max_macro_f1_drop: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Allowed macro-F1 drop vs production on the shared classes."
    )
    max_class_recall_drop: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="Allowed per-class recall drop vs production (one eval photo of ten is 0.1).",
    )
    significance: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description="A per-class drop beyond the tolerance fails only when a paired exact test on the class's "
        "photos gives p below this (1.0: every such drop fails, however few photos show it).",
    )


@functools.cache
def get_gate_settings() -> GateSettings:
    settings = load(GateSettings)
    assert isinstance(settings, GateSettings)  # narrowing for mypy
    return settings
