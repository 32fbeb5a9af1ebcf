"""Reading request bodies under a cap: refuse by Content-Length first, then count while reading."""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator

from fastapi import Request

from registry_api.errors import InvalidRequest, PayloadTooLarge


def check_declared_length(request: Request, cap: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise InvalidRequest(f"Content-Length {declared!r} is not a number") from None
    if length > cap:
        raise PayloadTooLarge(f"body of {length} bytes is over the {cap}-byte cap")


async def capped_stream(request: Request, cap: int) -> AsyncGenerator[bytes, None]:
    """The body's chunks; raises `PayloadTooLarge` as soon as more than `cap` bytes arrived."""
    check_declared_length(request, cap)
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise PayloadTooLarge(f"body is over the {cap}-byte cap")
        yield chunk


async def read_capped(request: Request, cap: int) -> bytes:
    parts = [chunk async for chunk in capped_stream(request, cap)]
    return b"".join(parts)


def gunzip_capped(data: bytes, cap: int) -> bytes:
    """Decompress a gzip body, refusing one that would inflate past `cap` (a zip bomb stops here)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"body is not valid gzip: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body is over the {cap}-byte cap")
    if not inflater.eof:
        raise InvalidRequest("gzip body is truncated")
    return out
