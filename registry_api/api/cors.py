"""CORS for browser devices (the web kiosk, web apps on the TypeScript SDK): listed origins only.

Not Starlette's CORSMiddleware: that one adds its Access-Control-* headers (credentials
included, when enabled) to answers for *any* Origin, listed or not. Here an unlisted origin
gets nothing but `Vary: Origin` (so a shared cache keeps the two answers apart), and no
origin is ever told credentials are allowed: keys travel in headers the page sets itself,
never in cookies. Installed only when `cors_origins` is set, so the default costs nothing.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = "GET, HEAD, POST"
# What the SDK sends: keys, conditional polls, ranged downloads, (gzipped) telemetry bodies.
ALLOW_HEADERS = frozenset(
    {"authorization", "x-api-key", "if-none-match", "range", "if-range", "content-type", "content-encoding"}
)
# What the SDK reads besides the simple ones.
EXPOSE_HEADERS = "ETag, Content-Range, Accept-Ranges, Content-Length, Retry-After"
MAX_AGE_S = "600"


class CORSMiddleware:
    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        listed = origin in self.origins
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(listed, origin, headers, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if listed:
                    out["Access-Control-Allow-Origin"] = origin
                    out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, listed: bool, origin: str, headers: Headers, send: Send) -> None:
        method = headers["access-control-request-method"].strip().upper()
        asked = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()}
        refused = None
        if not listed:
            refused = f"origin {origin[:100]!r} is not in cors_origins (EDGELOOP_REGISTRY_CORS_ORIGINS)"
        elif method not in ("GET", "HEAD", "POST"):
            refused = f"method {method[:20]!r} is not allowed cross-origin; use {METHODS}"
        elif extra := sorted(asked - ALLOW_HEADERS):
            refused = f"headers {', '.join(h[:40] for h in extra[:5])} are not allowed cross-origin"
        response: list[tuple[bytes, bytes]] = [(b"vary", b"Origin"), (b"cache-control", b"no-store")]
        if refused is None:
            status, body = 204, b""
            response += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", METHODS.encode()),
                (b"access-control-allow-headers", ", ".join(sorted(ALLOW_HEADERS)).encode()),
                (b"access-control-max-age", MAX_AGE_S.encode()),
            ]
        else:
            status, body = 403, json.dumps({"detail": refused}).encode()
            response += [(b"content-type", b"application/json")]
        response.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response})
        await send({"type": "http.response.body", "body": body})
