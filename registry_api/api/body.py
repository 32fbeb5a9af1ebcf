"""Reading request bodies under a cap: refuse by Content-Length first, then count while reading.

`BodyGuard` does it for every route that lets FastAPI read its body (small JSON bodies);
telemetry and publish stream theirs through `capped_stream` under their own larger caps.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import pydantic_core
from fastapi import Request
from fastapi.responses import Response
from starlette import types as asgi

from registry_api.errors import InvalidRequest, MalformedBody, PayloadTooLarge, RegistryApiError

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²" and "٣", which int() refuses
_INT64 = 2**63
# POST routes that read (and cap) their own bodies, streaming: they take more than a small JSON body.
_OWN_BODY = re.compile(r"^/v1/(telemetry|models/[^/]+/versions)$")


def declared_length(value: str | None, cap: int) -> None:
    """Refuse a Content-Length over `cap` before a byte of the body is read."""
    if value is None:
        return
    digits = value.strip()
    if not _DIGITS.fullmatch(digits):
        raise InvalidRequest(f"Content-Length {value[:40]!r} is not a number of bytes")
    if len(digits) > len(str(cap)) or int(digits) > cap:
        raise PayloadTooLarge(f"body of {digits[:40]} bytes is over the {cap}-byte cap; send less")


def check_declared_length(request: Request, cap: int) -> None:
    declared_length(request.headers.get("content-length"), cap)


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


def check_json(body: bytes) -> None:
    """Refuse JSON that parses in Python but breaks later: NaN/Infinity, NUL, lone surrogates, huge numbers.

    FastAPI parses with `json.loads`, which accepts all of these; the database, the warehouse
    and the JSON encoder of error answers then fail (500s). pydantic-core's parser refuses
    NaN/Infinity (with allow_inf_nan=False), invalid UTF-8, lone surrogates and nesting past
    200 levels; the walk catches the rest.
    """
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise MalformedBody(
            f"body is not strict JSON ({exc}); send UTF-8 JSON with finite numbers and no lone surrogates"
        ) from None
    _check_value(value, "body")


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise MalformedBody(f"{where} contains a NUL character; remove it")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise MalformedBody(f"{where} is an integer outside the 64-bit range; send a smaller number")
    elif isinstance(value, float):
        if not math.isfinite(value):  # 1e400 parses as inf even with allow_inf_nan=False
            raise MalformedBody(f"{where} is a number too large for a double; send a finite number")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_value(item, f"{where}[{n}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, f"{where} key {key[:40]!r}")
            _check_value(item, f"{where}.{key[:40]}")


def _is_json(content_type: bytes | None) -> bool:
    media = (content_type or b"").split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


OnError = Callable[[Request, Exception], Awaitable[Response]]


class BodyGuard:
    """Caps every body the app would read whole, before it reads it, and refuses JSON that would crash it.

    Pure ASGI: a body is refused by Content-Length without reading a byte; a chunked one is
    counted as it arrives and refused at `max_body_bytes` (so a worker holds at most that much
    of it). An accepted body is held (it is small) and handed on as one message. Routes in
    `_OWN_BODY` stream their bodies under their own caps and pass through untouched, as do
    requests without a body (polls never come here: `FastPollMiddleware` sits in front).
    """

    def __init__(self, app: asgi.ASGIApp, on_error: OnError) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "POST" and _OWN_BODY.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        cap: int = scope["app"].state.registry.settings.max_body_bytes
        try:
            declared_length(None if declared is None else declared.decode("latin-1"), cap)
            body = await _read(receive, cap)
            if body is None:
                return  # the client went away; nobody to answer
            if body and _is_json(headers.get(b"content-type")):
                check_json(body)
        except RegistryApiError as exc:
            response = await self.on_error(Request(scope), exc)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read(receive: asgi.Receive, cap: int) -> bytes | None:
    parts: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > cap:
            raise PayloadTooLarge(f"body is over the {cap}-byte cap; send less (setting max_body_bytes)")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: asgi.Receive) -> asgi.Receive:
    """The held body as one message, then whatever the server says next (a disconnect)."""
    pending = True

    async def replay() -> asgi.Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
