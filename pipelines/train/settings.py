"""Training settings, read from `EDGELOOP_TRAIN_*` variables (or passed in by code).

The defaults are the ones the demo uses: they reach macro F1 >= 0.95 on the synthetic
20-product catalogue on 2 CPU cores without any downloaded weights (see bench/train.py).
`LEGACY_RECIPE` holds the values they replaced (issue 19); set them through the same
variables to train the old way, e.g. `EDGELOOP_TRAIN_JIT_COMPILE=false`.
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgeloop.settings import load


class AugmentSettings(BaseSettings):
    """Random training-time distortions; factors follow Keras' preprocessing layers."""

    model_config = SettingsConfigDict(env_prefix="EDGELOOP_TRAIN_AUGMENT_", extra="ignore")

    enabled: bool = Field(default=True, description="Off switch for every augmentation.")
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"
    rotation: float = Field(default=0.05, ge=0.0, le=0.5, description="Fraction of a full turn, either way.")
    zoom: float = Field(default=0.1, ge=0.0, lt=1.0, description="Zoom in/out fraction (crop when zooming in).")
    translation: float = Field(default=0.1, ge=0.0, lt=1.0, description="Shift as a fraction of the side.")
    brightness: float = Field(default=0.15, ge=0.0, le=1.0, description="Brightness change, fraction of 255.")
    contrast: float = Field(default=0.15, ge=0.0, le=1.0, description="Contrast change factor.")


class TrainSettings(BaseSettings):
    """Every knob of a training run; recorded in full in `training_runs.settings`."""

    model_config = SettingsConfigDict(env_prefix="EDGELOOP_TRAIN_", env_file=".env", extra="ignore")

    alpha: float = Field(default=0.35, ge=0.35, le=1.0, description="MobileNetV2 width multiplier.")
    size: int = Field(default=96, ge=32, le=224, description="Input side in pixels (square).")
    batch_size: int = Field(default=16, ge=1, le=1024, description="Small batches: more updates per CPU-second.")
    head_epochs: int = Field(default=2, ge=0, description="Epochs with the backbone frozen (pretrained backbones).")
    epochs: int = Field(
        default=30, ge=1, description="Epochs of the main phase: fine-tune, or full training from scratch."
    )
    fine_tune_layers: int = Field(
        default=40, ge=0, description="Top backbone layers unfrozen in the fine-tune phase (0 = whole backbone)."
    )
    head_learning_rate: float = Field(
        default=3e-3, gt=0.0, description="Head-phase learning rate; a linear head on fixed features takes a large one."
    )
    learning_rate: float = Field(default=3e-3, gt=0.0, description="Main-phase peak learning rate (cosine decay).")
    fine_tune_learning_rate: float = Field(default=3e-4, gt=0.0, description="Learning rate when fine-tuning.")
    warm_start_epochs: int = Field(
        default=15,
        ge=1,
        description="Epochs of the whole network after the head phase, warm-started from a parent (bench/train.py's "
        "retrain: 10 ended 2.4 points of macro F1 below the parent recipe's 15 and never reached 0.95; 6 lost 3).",
    )
    warm_start_learning_rate: float = Field(
        default=1e-3, gt=0.0, description="Peak learning rate when warm-starting (cosine decay)."
    )
    warmup_epochs: int = Field(default=1, ge=0)
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    label_smoothing: float = Field(default=0.05, ge=0.0, lt=1.0)
    class_weights: bool = Field(default=True, description="Weight classes by inverse train frequency.")
    early_stopping_metric: Literal["val_macro_f1", "val_loss"] = "val_macro_f1"
    patience: int = Field(default=6, ge=1, description="Epochs without improvement before stopping.")
    target_macro_f1: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Stop as soon as eval macro F1 reaches this (None = train on)."
    )
    seed: int = 1234
    deterministic: bool = Field(default=True, description="Deterministic TF ops (same seed, same metrics).")
    threads: int = Field(default=0, ge=0, description="TF intra-op threads (0 = TF's default).")
    cache: Literal["auto", "memory", "none"] = Field(
        default="auto", description="Cache decoded images in memory; auto = when they fit in cache_limit_mb."
    )
    cache_limit_mb: int = Field(default=1024, ge=0)
    jit_compile: bool = Field(
        default=False,
        description="XLA-compile the train and predict steps; needs deterministic=false (Keras turns XLA off under "
        "op determinism). Measured 5x slower than graph mode for MobileNetV2 on CPU (issue 19).",
    )
    precision: Literal["auto", "float32", "mixed_bfloat16"] = Field(
        default="float32",
        description="auto = bfloat16 mixed precision where the CPU has native BF16 (avx512_bf16/amx_bf16), else "
        "float32. Measured 1.6-1.9x slower than float32 on an AMX CPU with TF 2.21 (issue 19), hence not the default.",
    )
    fused_kernels: bool = Field(
        default=True,
        description="Train with TensorFlow's fused BatchNorm and Adam kernels (Keras 3 runs both as many small "
        "ops); the saved model is stock Keras either way. Measured 1.3-1.7x more train-step images/s and about "
        "2.5 s less tracing per phase on 2 cores (issue 19).",
    )
    eval_every: int = Field(
        default=2,
        ge=1,
        description="Epochs between evals in the second half of a phase, where the curve is flat (1 = every epoch).",
    )
    augment: AugmentSettings = Field(default_factory=AugmentSettings)

    @field_validator("alpha")
    @classmethod
    def _known_alpha(cls, value: float) -> float:
        # Keras ships MobileNetV2 definitions (and imagenet weights) only for these widths.
        allowed = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
        if value not in allowed:
            raise ValueError(f"alpha {value} has no MobileNetV2 definition; use one of {allowed[:4]}")
        return value


@functools.cache
def get_train_settings() -> TrainSettings:
    """Settings from the environment, cached; tests call `get_train_settings.cache_clear()`."""
    settings = load(TrainSettings)
    assert isinstance(settings, TrainSettings)  # narrowing for mypy
    return settings


# The recipe the defaults replaced (issue 19), for `bench/train.py` and anyone who wants it back:
# TrainSettings(**LEGACY_RECIPE), or the same names as EDGELOOP_TRAIN_* variables.
LEGACY_RECIPE: dict[str, object] = {
    "batch_size": 16,
    "epochs": 30,
    "learning_rate": 3e-3,
    "eval_every": 1,
    "jit_compile": False,
    "precision": "float32",
    "fused_kernels": False,
    "head_epochs": 3,
    "head_learning_rate": 1e-3,
    "warm_start_epochs": 15,
    "warm_start_learning_rate": 1e-3,
}
