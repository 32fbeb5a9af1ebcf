"""Downloads by sha256 through the real app: Range edge cases, ETag, 304, 416, 404."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_api.testing import Harness, make_package


@pytest.fixture()
def artifact(harness: Harness, tmp_path: Path) -> tuple[Harness, str, bytes]:
    pkg = make_package(tmp_path / "pkg", sizes={"tflite_int8": 1_000_003})
    version = harness.publish(pkg).json()
    entry = next(v for v in version["variants"] if v["variant"] == "tflite_int8")
    return harness, entry["sha256"], (pkg / entry["file"]).read_bytes()


def _get(h: Harness, sha: str, **headers: str):  # type: ignore[no-untyped-def]
    return h.client.get(f"/v1/artifacts/{sha}", headers={**h.auth(h.device), **headers})


def test_whole_file(artifact: tuple[Harness, str, bytes]) -> None:
    h, sha, data = artifact
    response = _get(h, sha)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == f'"{sha}"'
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=999990-", 999_990, 1_000_002),
        ("bytes=-7", 999_996, 1_000_002),
        ("bytes=-2000000", 0, 1_000_002),
        ("bytes=1000000-9999999", 1_000_000, 1_000_002),
        ("bytes=0-4,5-9", 0, 9),
    ],
)
def test_ranges(artifact: tuple[Harness, str, bytes], header: str, start: int, end: int) -> None:
    h, sha, data = artifact
    response = _get(h, sha, Range=header)
    assert response.status_code == 206
    assert response.content == data[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert response.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=1000003-", "bytes=-0", "bytes=2000000-2000010"])
def test_unsatisfiable(artifact: tuple[Harness, str, bytes], header: str) -> None:
    h, sha, data = artifact
    response = _get(h, sha, Range=header)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


def test_ignored_ranges_give_whole_file(artifact: tuple[Harness, str, bytes]) -> None:
    h, sha, data = artifact
    for header in ("bytes=0-1,100-101", "lines=1-2", "bytes=9-1"):
        response = _get(h, sha, Range=header)
        assert (response.status_code, len(response.content)) == (200, len(data))
    stale = _get(h, sha, Range="bytes=0-9", **{"If-Range": '"someotheretag"'})
    assert stale.status_code == 200
    fresh = _get(h, sha, Range="bytes=0-9", **{"If-Range": f'"{sha}"'})
    assert fresh.status_code == 206


def test_if_none_match_and_unknown(artifact: tuple[Harness, str, bytes]) -> None:
    h, sha, _ = artifact
    cached = _get(h, sha, **{"If-None-Match": f'"{sha}"'})
    assert cached.status_code == 304 and cached.content == b""
    assert _get(h, "f" * 64).status_code == 404
    assert _get(h, "not-a-sha").status_code == 422


def test_downloads_are_private_and_vary_on_every_key_header(artifact: tuple[Harness, str, bytes]) -> None:
    h, sha, _ = artifact
    for response in (_get(h, sha), _get(h, sha, Range="bytes=0-9"), _get(h, sha, **{"If-None-Match": f'"{sha}"'})):
        # A download needs a key: a shared cache must not keep it for the next caller.
        assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
        assert response.headers["vary"] == "Authorization, X-API-Key"


def test_a_deployment_may_let_a_cdn_keep_downloads(artifact: tuple[Harness, str, bytes]) -> None:
    h, sha, _ = artifact
    h.client.app.state.registry.settings.artifact_cache = "public"  # type: ignore[attr-defined]
    response = _get(h, sha)
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["vary"] == "Authorization, X-API-Key"
