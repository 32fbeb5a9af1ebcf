"""Validation errors as one bounded sentence: where, what is wrong, a short look at the value.

FastAPI's default 422 echoes every offending input whole (a 20 MiB body gave a 160 MiB answer)
and cannot encode NaN at all (a 500); this names the fields instead and quotes at most a few
characters of each value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_ERRORS = 5
_WIDTH = 40


def describe_errors(errors: Sequence[Any], limit: int = MAX_ERRORS) -> str:
    """`events[57].kind: Input should be … (got 'teleport')`, for the first `limit` problems."""
    parts = []
    for error in errors[:limit]:
        # A location may hold a caller's key (an unknown field), so each part is shortened too.
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{_short(p, quote=False)}" for p in error["loc"])
        where = where.lstrip(".")
        msg = _short(str(error["msg"]), 200, quote=False)
        text = f"{where}: {msg}" if where else msg
        if error["type"] not in ("missing", "json_invalid") and isinstance(error.get("input"), str | int | float):
            text += f" (got {_short(error['input'])})"
        cause = str((error.get("ctx") or {}).get("error", ""))
        if error["type"] == "json_invalid" and cause and cause not in msg:  # FastAPI's says only "JSON decode error"
            text += f" ({_short(cause, 100, quote=False)})"
        if error["type"] == "timezone_aware":
            text += "; send UTC, e.g. 2026-11-23T07:00:00Z"
        parts.append(text)
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)


def _short(value: object, width: int = _WIDTH, quote: bool = True) -> str:
    text = repr(value) if quote else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 `{"detail": "body.version: Input should be …; fix and resend (schema: /openapi.json)"}`."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    text = describe_errors(errors) or str(exc)[:200]
    return JSONResponse(
        {"detail": f"{text}; fix and resend (schema: /openapi.json)"},
        status_code=422,
        headers={"Cache-Control": "no-store"},
    )
