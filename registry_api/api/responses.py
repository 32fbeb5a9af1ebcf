"""OpenAPI descriptions of the error statuses routes share (body: `{"detail": "…"}`)."""

from __future__ import annotations

from typing import Any

from registry_api.models import ErrorBody

_TEXT = {
    304: "Not modified: the If-None-Match ETag matches; no body.",
    400: "The body cannot be parsed as strict JSON (not UTF-8, not JSON, NaN/Infinity, NUL, lone surrogates).",
    401: "Missing, malformed, unknown or revoked API key.",
    403: "The key's role may not use this route.",
    404: "No such model, version, alias or artifact.",
    409: "A concurrent change won; retry.",
    413: "Body over the configured cap (checked from Content-Length first, then while reading).",
    416: "Range not satisfiable; Content-Range: bytes */<size>.",
    422: "The request is well-formed JSON but invalid, or the package does not check out.",
    429: "Rate limit exceeded; Retry-After says when to try again.",
}


def errors(*codes: int, extra: dict[int | str, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these statuses, plus `extra` (the route's own success answers)."""
    out: dict[int | str, dict[str, Any]] = dict(extra or {})
    for code in codes:
        if code == 304:
            out[code] = {"description": _TEXT[code]}
        elif code == 429:
            out[code] = {
                "description": _TEXT[code],
                "model": ErrorBody,
                "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
            }
        else:
            out[code] = {"description": _TEXT[code], "model": ErrorBody}
    return out


AUTH = (401, 403, 429)
