"""Conversion settings, read from `EDGELOOP_CONVERT_*` variables (and `.env`).

Nothing is built at import: call `get_convert_settings()`; tests clear its cache.
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgeloop.settings import load

# tf2onnx 1.17 knows opsets up to 18; per-channel QDQ needs 13 or later.
MIN_OPSET = 13
MAX_OPSET = 18


class ConvertSettings(BaseSettings):
    """Defaults for `edgeloop convert`; CLI flags and `ConvertOptions` override them per call."""

    model_config = SettingsConfigDict(
        env_prefix="EDGELOOP_CONVERT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    variants: str = Field(default="all", description="Comma-separated variant names, or `all`.")
    opset: int = Field(default=17, description=f"ONNX opset for tf2onnx ({MIN_OPSET}..{MAX_OPSET}).")
    representative_samples: int = Field(default=200, ge=1, description="Train images used to calibrate int8.")
    eval_limit: int | None = Field(default=None, ge=1, description="Cap on eval images for parity (None: all).")
    threads: int = Field(default=2, ge=1, description="CPU threads for parity and latency runs.")
    runs: int = Field(default=50, ge=1, description="Timed latency runs per variant (after warm-up).")
    warmup: int = Field(default=5, ge=0, description="Untimed warm-up runs per variant.")
    output: str = Field(default="", description="Package root (default: <workspace>/packages).")
    mediapipe_env: str = Field(
        default="",
        description="Folder of the MediaPipe tool environment that writes standard TFLite Metadata "
        "(default: .tools/mediapipe-env in a source checkout, else ~/.cache/edgeloop/mediapipe-env).",
    )
    mediapipe_python: str = Field(
        default="", description="Python 3.11/3.12 the tool environment is built with (default: this one)."
    )
    onnx_reduce_range: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="7-bit ONNX int8 weights. On x86 without VNNI onnxruntime's u8*s8 pair sums saturate int16 "
        "unless weights are 7-bit; with VNNI 8 bits are exact and keep more accuracy. auto = off when the "
        "converting CPU has VNNI (avx512_vnni/avx_vnni), on otherwise: convert on the CPU class you ship to, "
        "or set `on` for a fleet with pre-VNNI x86.",
    )
    tflite_dynamic_hybrid: bool = Field(
        default=False,
        description="Keep LiteRT's hybrid kernels in tflite_dynamic (int8 math, activations quantized on the fly). "
        "They run outside XNNPACK: MobileNetV2 measured 2.3-3.8x slower than fp32. Default: int8 weights "
        "dequantized once at load, float math in XNNPACK (fp32 speed, same file size).",
    )
    # The parity gate. Drops are fractions (0.01 = 1 point).
    max_f1_drop: float = Field(default=0.01, ge=0, description="Max macro-F1 drop vs Keras.")
    max_recall_drop: float = Field(default=0.03, ge=0, description="Max per-class recall drop vs Keras.")
    significance: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="A recall drop beyond the max fails only when a paired exact test on the class's photos "
        "gives p below this (1: every such drop fails, however few photos show it).",
    )
    min_agreement_quantized: float = Field(default=0.98, ge=0, le=1, description="Min top-1 agreement, quantized.")
    min_agreement_fp32: float = Field(default=0.999, ge=0, le=1, description="Min top-1 agreement, fp32.")
    max_abs_diff_fp32: float = Field(default=1e-4, ge=0, description="Max abs probability difference, fp32.")

    @field_validator("opset")
    @classmethod
    def _known_opset(cls, value: int) -> int:
        if problem := opset_problem(value):
            raise ValueError(f"opset {problem}")
        return value


def opset_problem(opset: int) -> str | None:
    """Why `opset` cannot be used (None when it can): the one rule for the setting and for `--opset`."""
    if MIN_OPSET <= opset <= MAX_OPSET:
        return None
    return f"{opset} is not supported; use {MIN_OPSET}..{MAX_OPSET} (tf2onnx 1.17)"


def onnx_reduce_range(setting: str, cpuinfo: str | None = None) -> bool:
    """Whether ONNX int8 weights are 7-bit: the setting, with `auto` decided by this CPU's VNNI."""
    from edgeloop import cpu

    if setting == "auto":
        return not cpu.having(cpu.VNNI, cpuinfo)
    return setting == "on"


@functools.cache
def get_convert_settings() -> ConvertSettings:
    """The process-wide conversion settings."""
    settings = load(ConvertSettings)
    assert isinstance(settings, ConvertSettings)  # narrowing for mypy
    return settings
