"""CPU feature flags from /proc/cpuinfo text."""

from __future__ import annotations

from edgeloop import cpu

CPUINFO = (
    "processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni amx_bf16\n\n"
    "processor\t: 1\nflags\t\t: fpu avx2 avx512_vnni amx_bf16\nbugs\t\t: spectre_v1\n"
)


def test_flags_are_read_from_the_flags_lines_only() -> None:
    assert cpu.flags(CPUINFO) == {"fpu", "avx2", "avx512_vnni", "amx_bf16"}
    assert cpu.having(cpu.VNNI, CPUINFO) == ["avx512_vnni"]
    assert cpu.having(cpu.NATIVE_BF16, CPUINFO) == ["amx_bf16"]
    assert cpu.having(cpu.VNNI, "processor\t: 0\n") == []


def test_this_machine_reports_a_set() -> None:
    assert isinstance(cpu.flags(), set)
