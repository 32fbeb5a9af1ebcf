"""JSON Lines files through `edgeloop.storage`; a `.gz` suffix means gzip."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from edgeloop import storage


def dumps(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), default=str)


def write_jsonl(uri: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows (one JSON object per line) atomically; returns the number of rows."""
    lines = [dumps(row) + "\n" for row in rows]
    data = "".join(lines).encode("utf-8")
    if uri.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    storage.write_bytes(uri, data)
    return len(lines)


def read_jsonl(uri: str) -> Iterator[dict[str, Any]]:
    """The rows of a JSON Lines file (gzip if the name ends in .gz)."""
    data = storage.read_bytes(uri)
    if uri.endswith(".gz"):
        data = gzip.decompress(data)
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


__all__ = ["dumps", "read_jsonl", "write_jsonl"]
