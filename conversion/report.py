"""The benchmark table printed after a conversion and saved as `benchmark.md` (Ultralytics-style)."""

from __future__ import annotations

from collections.abc import Sequence

from conversion.card import VariantEntry

COLUMNS = (
    "Variant",
    "Status",
    "Size (MB)",
    "Accuracy",
    "Macro-F1",
    "ΔF1 (pts)",
    "Agreement",
    "Max |Δp|",
    "p50 (ms)",
    "p90 (ms)",
    "Init (ms)",
    "Peak (MB)",
)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown_table(
    entries: Sequence[VariantEntry], *, keras_macro_f1: float | None = None, keras_accuracy: float | None = None
) -> str:
    """A Markdown table, one row per variant, then the reasons of any variant not publishable."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    if keras_macro_f1 is not None:
        ref = ["keras (reference)", "-", "-", _num(keras_accuracy, ".4f"), _num(keras_macro_f1, ".4f")]
        lines.append("| " + " | ".join(ref + ["-"] * (len(COLUMNS) - len(ref))) + " |")
    for e in entries:
        drop = None if keras_macro_f1 is None or e.macro_f1 is None else 100 * (keras_macro_f1 - e.macro_f1)
        lat = e.latency
        row = [
            e.variant,
            "✅" if e.publishable else "❌",
            f"{e.size / 1e6:.2f}",
            _num(e.accuracy, ".4f"),
            _num(e.macro_f1, ".4f"),
            _num(drop, "+.2f"),
            "-" if e.agreement is None else f"{100 * e.agreement:.2f}%",
            _num(e.max_abs_diff, ".1e"),
            _num(lat.p50_ms if lat else None, ".2f"),
            _num(lat.p90_ms if lat else None, ".2f"),
            _num(lat.init_ms if lat else None, ".1f"),
            _num(lat.peak_mem_mb if lat else None, ".0f"),
        ]
        lines.append("| " + " | ".join(row) + " |")
    failed = [e for e in entries if not e.publishable]
    if failed:
        lines.append("")
        lines.extend(f"- **{e.variant}** not publishable: {e.reason}" for e in failed)
    return "\n".join(lines) + "\n"
