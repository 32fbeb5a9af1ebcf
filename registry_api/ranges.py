"""HTTP Range (RFC 9110 §14) for single-part answers: parse, clamp, coalesce."""

from __future__ import annotations

import re

from registry_api.errors import RangeNotSatisfiable

# ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() then refuses or misreads.
_POSITION = re.compile(r"[0-9]*")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) to send, or None to send the whole object.

    A header we cannot parse, or one in another unit, is ignored (the whole object is sent,
    as the RFC allows). Several ranges are coalesced; if they do not merge into one span
    the whole object is sent. Raises `RangeNotSatisfiable` when no range overlaps the object.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    spans: list[tuple[int, int]] = []
    for part in spec.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not dash:
            return None
        first, last = first.strip(), last.strip()
        if not _POSITION.fullmatch(first) or not _POSITION.fullmatch(last):
            return None
        if first == "":
            if last == "":
                return None
            suffix = int(last)
            if suffix == 0:
                continue  # "-0" selects nothing
            spans.append((max(0, size - suffix), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            return None  # an invalid range-spec makes the whole header invalid
        if start >= size:
            continue  # unsatisfiable on its own
        spans.append((start, min(int(last), size - 1) if last else size - 1))
    if not spans:
        raise RangeNotSatisfiable(f"range {header!r} selects nothing of a {size}-byte object", size)
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end + 1:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    if len(merged) > 1:
        return None  # multipart/byteranges is not offered; the whole object is a valid answer
    return merged[0]
