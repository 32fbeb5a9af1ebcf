"""How a run computes: numeric precision and XLA, resolved once per run and recorded with it.

bfloat16 mixed precision only pays where the CPU multiplies bfloat16 natively
(`avx512_bf16` or `amx_bf16` in /proc/cpuinfo); elsewhere TensorFlow emulates it and
it is slower than float32, so `precision="auto"` picks it only on such CPUs. No
TensorFlow here: the CLI and tests import it cheaply.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from edgeloop import cpu
from pipelines.train.settings import TrainSettings

Precision = Literal["float32", "mixed_bfloat16"]


class Compute(BaseModel):
    """What a run used, as recorded in its settings row and model card."""

    precision: Precision
    jit_compile: bool
    native_bf16: bool
    cpu_flags: list[str]  # the native BF16 flags (edgeloop.cpu.NATIVE_BF16) this CPU has


def resolve(settings: TrainSettings, cpuinfo: str | None = None) -> Compute:
    """The precision and compilation this run uses on this CPU."""
    flags = cpu.having(cpu.NATIVE_BF16, cpuinfo)
    auto: Precision = "mixed_bfloat16" if flags else "float32"
    precision = auto if settings.precision == "auto" else settings.precision
    # Keras silently compiles without XLA when op determinism is on: record what really runs.
    jit = settings.jit_compile and not settings.deterministic
    return Compute(precision=precision, jit_compile=jit, native_bf16=bool(flags), cpu_flags=flags)
