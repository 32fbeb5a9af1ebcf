"""The registry behind a REAL nginx cache (registry_api/deploy/nginx-cache.conf.template): nothing leaks.

A real uvicorn registry, and nginx started here with its own prefix and config on a free loopback port
(a non-daemon child, stopped at the end). Skipped where nginx is not installed; CI installs it (.ci/run).
"""

from __future__ import annotations

import os
import shutil
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry_api.rollout import bucket
from registry_api.testing import Server, create_keys, make_package, multipart

pytestmark = pytest.mark.slow

TEMPLATE = Path(__file__).resolve().parents[2] / "registry_api" / "deploy" / "nginx-cache.conf.template"
MODEL = "shelf-products"
MAX_AGE_S = 2  # manifest_max_age_s for this test: short, so an alias move shows within seconds
STATE_TTL_S = 0.5  # state_cache_ttl_s
# The bound the README documents: manifest_max_age_s + state_cache_ttl_s + 1 s (a cache counts whole seconds:
# nginx keeps an entry stored at 10.9 s with max-age=2 until 12.999 s).
STALENESS_BOUND_S = MAX_AGE_S + STATE_TTL_S + 1
# HEAD on artifacts and the manifest is being added to the registry by another change. Through nginx,
# HEAD works already (nginx asks the registry with GET); set this True once the registry answers HEAD itself.
REGISTRY_ANSWERS_HEAD = True


def _nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx in the foreground with its own prefix, the shipped template rendered into its http block."""

    def __init__(self, exe: str, root: Path, upstream: str, template: Path = TEMPLATE, **variables: str) -> None:
        self.exe, self.root = exe, root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = string.Template(template.read_text()).safe_substitute(
            EDGELOOP_NGINX_LISTEN=f"127.0.0.1:{self.port}",
            EDGELOOP_NGINX_UPSTREAM=upstream,
            EDGELOOP_NGINX_CACHE_DIR=str(root / "cache"),
            **variables,
        )
        temp = {k: root / k for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir(parents=True)
        # One process (no master, no user switch), so it runs the same as root in CI or as a developer.
        (root / "nginx.conf").write_text(
            f"daemon off;\nmaster_process off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n    access_log {root}/access.log;\n"
            + "".join(f"    {k}_temp_path {v};\n" for k, v in temp.items())
            + site
            + "\n}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = str(self.root / "nginx.conf")
        check = subprocess.run([self.exe, "-t", "-p", str(self.root), "-c", conf], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([self.exe, "-p", str(self.root), "-c", conf], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120  # start-up on a loaded CI box
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {(self.root / 'error.log').read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


class Stack:
    """Publisher access to the registry directly; devices through the cache."""

    def __init__(self, registry: Server, cache: Nginx, tokens: dict[str, str]) -> None:
        self.registry, self.cache, self.tokens = registry, cache, tokens
        self.origin = httpx.Client(base_url=registry.url, timeout=30)
        self.client = httpx.Client(base_url=cache.url, timeout=30)

    def publisher(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['publisher']}"}

    def set_alias(self, version: int, rollout_percent: int = 100) -> None:
        body = {"version": version, "rollout_percent": rollout_percent}
        response = self.origin.put(f"/v1/models/{MODEL}/aliases/production", json=body, headers=self.publisher())
        assert response.status_code == 200, response.text

    def poll(self, headers: dict[str, str], **params: str) -> httpx.Response:
        return self.client.get(f"/v1/models/{MODEL}/manifest", params={"runtime": "litert", **params}, headers=headers)


@pytest.fixture()
def stack(registry_env: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    exe = _nginx()
    if exe is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx); CI installs it in .ci/run")
    artifact_cache = getattr(request, "param", "private")
    env = {
        **os.environ,
        "EDGELOOP_REGISTRY_MANIFEST_MAX_AGE_S": str(MAX_AGE_S),
        "EDGELOOP_REGISTRY_STATE_CACHE_TTL_S": str(STATE_TTL_S),
        "EDGELOOP_REGISTRY_ARTIFACT_CACHE": artifact_cache,
    }
    tokens = create_keys(publisher=10_000.0, device=10_000.0)
    registry = Server(env)
    registry.start()
    cache = Nginx(exe, tmp_path / "nginx", f"127.0.0.1:{registry.port}")
    try:
        cache.start()
        s = Stack(registry, cache, tokens)
        for run in ("run-1", "run-2"):
            pkg = make_package(tmp_path / run, run=run, sizes={"tflite_int8": 300_001})
            response = s.origin.post(f"/v1/models/{MODEL}/versions", files=multipart(pkg), headers=s.publisher())
            assert response.status_code == 201, response.text
        s.set_alias(1)
        yield s
    finally:
        cache.stop()
        registry.stop()


def _device(s: Stack, via: str = "Authorization") -> dict[str, str]:
    token = s.tokens["device"]
    return {"Authorization": f"Bearer {token}"} if via == "Authorization" else {"X-API-Key": token}


BOGUS = "elk_000000000000_not-a-real-secret"


def test_manifests_are_cached_per_key_header_and_304s_come_from_the_cache(stack: Stack) -> None:
    s = stack
    for via in ("X-API-Key", "Authorization"):
        first = s.poll(_device(s, via), device_id="d-1")
        assert first.status_code == 200, first.text
        again = s.poll(_device(s, via), device_id="d-1")
        assert (again.status_code, again.headers["x-cache-status"]) == (200, "HIT")
        assert again.content == first.content
        not_modified = s.poll({**_device(s, via), "If-None-Match": first.headers["etag"]}, device_id="d-1")
        assert (not_modified.status_code, not_modified.headers["x-cache-status"]) == (304, "HIT")
        assert not_modified.content == b""
    # Cached answers exist for d-1 under both headers; nobody without the key gets one of them.
    for headers in ({}, {"Authorization": f"Bearer {BOGUS}"}, {"X-API-Key": BOGUS}, {"Authorization": ""}):
        response = s.poll(headers, device_id="d-1")
        assert response.status_code == 401, (headers, response.status_code, response.headers.get("x-cache-status"))
        assert response.headers["x-cache-status"] != "HIT"


def test_devices_in_different_rollout_buckets_never_get_each_others_manifest(stack: Stack) -> None:
    s = stack
    s.set_alias(2, rollout_percent=50)
    inside = next(f"d-{i}" for i in range(1000) if bucket(f"d-{i}", "production", 2) < 50)
    outside = next(f"d-{i}" for i in range(1000) if bucket(f"d-{i}", "production", 2) >= 50)
    for _ in range(3):  # the first fills the cache, the others come from it
        assert s.poll(_device(s), device_id=inside).json()["version"] == 2
        assert s.poll(_device(s), device_id=outside).json()["version"] == 1
    assert s.poll(_device(s), device_id=outside).headers["x-cache-status"] == "HIT"


def test_an_alias_move_shows_through_the_cache_within_the_documented_bound(stack: Stack) -> None:
    s = stack
    assert s.poll(_device(s), device_id="d-1").json()["version"] == 1
    assert s.poll(_device(s), device_id="d-1").headers["x-cache-status"] == "HIT"  # cached before the move
    s.set_alias(2)
    moved = time.monotonic()
    seen = []
    while True:
        response = s.poll(_device(s), device_id="d-1")
        answered = time.monotonic() - moved
        version = response.json()["version"]
        seen.append(version)
        # Only ever old within the bound: slowness here only makes answers later, so it cannot fail this.
        assert version == 2 or answered <= STALENESS_BOUND_S, f"version {version} served {answered:.2f} s after"
        if version == 2:
            break
        time.sleep(0.1)  # pacing the polls only; what ends the loop is the new answer
    assert seen[0] == 1  # the cache did serve the old one for a while: this measured the cache, not a miss


@pytest.mark.parametrize("stack", ["private", "public"], indirect=True)
def test_downloads_through_the_cache_range_head_and_no_leak(stack: Stack) -> None:
    s = stack
    manifest = s.poll(_device(s), device_id="d-1").json()
    url, size = f"/v1/artifacts/{manifest['sha256']}", manifest["size"]
    whole = s.client.get(url, headers=_device(s))
    assert whole.status_code == 200 and len(whole.content) == size
    data = whole.content
    for via in ("Authorization", "X-API-Key"):
        for header, start, end in (
            ("bytes=10-99", 10, 99),
            ("bytes=-7", size - 7, size - 1),
            ("bytes=1000-", 1000, size - 1),
        ):
            part = s.client.get(url, headers={**_device(s, via), "Range": header})
            assert part.status_code == 206, (header, part.status_code)
            assert part.content == data[start : end + 1]
            assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        head = s.client.head(url, headers=_device(s, via))
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(size) and head.headers["etag"] == f'"{manifest["sha256"]}"'
    expected = "HIT" if s.registry.env["EDGELOOP_REGISTRY_ARTIFACT_CACHE"] == "public" else "MISS"
    assert s.client.get(url, headers=_device(s)).headers["x-cache-status"] == expected
    # Whatever the cache holds, a caller without the key gets none of it.
    for headers in ({}, {"Authorization": f"Bearer {BOGUS}"}, {"X-API-Key": BOGUS}):
        for extra in ({}, {"Range": "bytes=0-99"}):
            response = s.client.get(url, headers={**headers, **extra})
            assert response.status_code == 401, (headers, extra, response.status_code)
        assert s.client.head(url, headers=headers).status_code == 401
    if REGISTRY_ANSWERS_HEAD:  # enable after the HEAD change is merged: the registry itself, no cache
        direct = s.origin.head(url, headers=_device(s))
        assert (direct.status_code, direct.headers["content-length"]) == (200, str(size))
        assert s.origin.head(f"/v1/models/{MODEL}/manifest", headers=_device(s)).status_code == 200
