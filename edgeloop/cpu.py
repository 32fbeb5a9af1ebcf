"""What this CPU can do, from /proc/cpuinfo: the flags that decide numeric recipes at run time.

Training picks bfloat16 only where the CPU has native BF16; conversion picks ONNX int8
weight range by VNNI. Off Linux (no /proc/cpuinfo) no flag is reported: callers then
take their portable choice.
"""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
VNNI = ("avx512_vnni", "avx_vnni")


def flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (from `cpuinfo` text when given, else this machine's; empty if unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return set()
    found: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            found.update(line.split(":", 1)[-1].split())
    return found


def having(wanted: tuple[str, ...], cpuinfo: str | None = None) -> list[str]:
    """Which of `wanted` this CPU has, in the order asked."""
    present = flags(cpuinfo)
    return [f for f in wanted if f in present]
