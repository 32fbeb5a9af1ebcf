"""The registry's HTTP API as the device sees it, over httpx.

Statuses become `RegistryError` (with `Retry-After` parsed) here and nowhere else;
network failures become `RegistryError(status=None)`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import gzip
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from edge._exceptions import ManifestError, RegistryError
from edge.events import TelemetryBatch, TelemetryReceipt

log = logging.getLogger(__name__)

USER_AGENT = "edgeloop-edge/0.1"
# A manifest is a few kB; anything far bigger is an endless-data attack (TUF reads metadata up to a bound too).
MAX_MANIFEST_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class ManifestResponse:
    """One poll's answer: `raw` is None when the registry said 304 Not Modified."""

    raw: bytes | None
    etag: str | None

    @property
    def not_modified(self) -> bool:
        return self.raw is None


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None if unreadable.

    Not capped here: the caller's backoff caps it (`backoff_delay`).
    """
    if not value:
        return None
    value = value.strip()
    # isascii: str.isdigit() is true for "²" or Arabic-Indic digits, which float() may refuse.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are UTC
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def raise_for_status(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        body = response.text[:300]
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        body = ""
    raise RegistryError(
        f"{what}: registry answered {response.status_code} {body}".strip(),
        status=response.status_code,
        retry_after=retry_after,
    )


class RegistryClient:
    """A small synchronous client for the device routes of the registry."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"user-agent": USER_AGENT}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport, follow_redirects=True
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{what}: cannot reach the registry at {self.base_url}: {exc!r}") from exc
        raise_for_status(response, what)
        return response

    def manifest(self, model: str, params: Mapping[str, str | None], etag: str | None = None) -> ManifestResponse:
        """Poll the manifest; `etag` goes out as If-None-Match so an unchanged answer costs one 304."""
        headers = {"if-none-match": etag} if etag else {}
        query = {k: v for k, v in params.items() if v is not None}
        what = f"manifest of {model}"
        url = f"/v1/models/{quote(model, safe='')}/manifest"
        try:
            with self.http.stream("GET", url, params=query, headers=headers) as response:
                raise_for_status(response, what)
                if response.status_code == 304:
                    return ManifestResponse(None, etag)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_MANIFEST_BYTES:
                        raise ManifestError(
                            f"{what}: the answer exceeds {MAX_MANIFEST_BYTES} bytes; refusing it (not a manifest)"
                        )
                return ManifestResponse(bytes(body), response.headers.get("etag"))
        except httpx.HTTPError as exc:
            raise RegistryError(f"{what}: cannot reach the registry at {self.base_url}: {exc!r}") from exc

    def artifact_url(self, url: str) -> str:
        """Absolute URL of an artifact named by a manifest (which may give it relative to the registry)."""
        return str(self.http.base_url.join(url))

    def post_telemetry(self, batch: TelemetryBatch) -> TelemetryReceipt:
        """Upload one batch, gzipped; safe to resend (the registry dedupes by event_id)."""
        body = gzip.compress(batch.model_dump_json().encode(), compresslevel=5)
        response = self._request(
            "POST",
            "/v1/telemetry",
            "telemetry upload",
            content=body,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        return TelemetryReceipt.model_validate_json(response.content)

    def post_benchmark(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = self._request("POST", "/v1/benchmarks", "benchmark upload", json=dict(payload))
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {"response": data}

    def get_json(self, url: str, what: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self._request("GET", url, what, params=dict(params or {}))
        try:
            return response.json()
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{what}: registry sent invalid JSON: {exc}") from exc
