"""The console in a real browser: Debian's Chromium driven by Playwright against a real uvicorn registry.

Screenshots of every page are kept under the test's tmp_path; a JavaScript error or a CSP violation
on any page fails the test.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browserkit import chromium_or_skip, launch

from registry_api.testing import Server, create_keys, make_package, multipart

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL = "shelf-products"
XSS = "<script>alert('x')</script>"
EVIL = "http://evil.example"


@pytest.fixture()
def chromium() -> Iterator[Any]:
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture()
def registry(registry_env: Path, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    """A uvicorn registry with two versions (v1 in production and canary), benchmarks and keys of every role."""
    tokens = create_keys()
    server = Server({**os.environ})
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            publisher = {"Authorization": f"Bearer {tokens['publisher']}"}
            labels = ("lavender-soap", "rose-bath-bomb", XSS)
            for n, recall in ((1, (0.9, 0.8, 0.7)), (2, (0.95, 0.75, 0.85))):
                metrics = {"macro_f1": sum(recall) / 3, "class_recall": dict(zip(labels, recall, strict=True))}
                folder = make_package(tmp_path / f"v{n}", run=f"run-{n}", labels=labels, metrics=metrics)
                client.post(
                    f"/v1/models/{MODEL}/versions", files=multipart(folder), headers=publisher
                ).raise_for_status()
            for alias in ("production", "canary"):
                body = {"version": 1, "reason": "first release"}
                client.put(f"/v1/models/{MODEL}/aliases/{alias}", json=body, headers=publisher).raise_for_status()
            for device_class, base in (("pixel-6a", 8.0), ("galaxy-a14", 21.0)):
                for variant, factor in (("tflite_int8", 1.0), ("tflite_fp32", 2.5), ("onnx_int8", 1.4)):
                    report = {
                        "benchmark_id": str(uuid.uuid4()),
                        "device_class": device_class,
                        "device_id": f"{device_class}-lab-1",
                        "model": MODEL,
                        "version": 2,
                        "variant": variant,
                        "runs": 50,
                        "p50_ms": base * factor,
                        "p90_ms": base * factor * 1.2,
                        "p99_ms": base * factor * 1.5,
                        "measured_at": dt.datetime.now(dt.UTC).isoformat(),
                    }
                    qa = {"Authorization": f"Bearer {tokens['qa']}"}
                    client.post("/v1/benchmarks", json=report, headers=qa).raise_for_status()
            _field_and_training(client, tokens["device"])
        yield server, tokens
    finally:
        server.stop()


def _field_and_training(client: httpx.Client, device_key: str) -> None:
    """Telemetry through the registry, and two training runs written to the warehouse as training writes them."""
    from edge.events import TelemetryBatch, TelemetryEvent
    from edgeloop import tables, warehouse

    now = dt.datetime.now(dt.UTC)
    events = [
        TelemetryEvent(
            device_id=f"kiosk-{i % 9}",
            event_time=now - dt.timedelta(days=i % 3, minutes=i),
            kind="inference",
            model=MODEL,
            version=1 + i % 2,
            variant="tflite_int8",
            device_class=("pixel-6a", "galaxy-a14")[i % 3 // 2],
            latency_ms=8.0 + (i * 7) % 13,
            top1_label="lavender-soap",
            top1_score=0.35 if i % 5 == 0 else 0.92,
        )
        for i in range(120)
    ]
    batch = TelemetryBatch(events=events).model_dump_json()
    headers = {"Authorization": f"Bearer {device_key}", "content-type": "application/json"}
    client.post("/v1/telemetry", content=batch, headers=headers).raise_for_status()
    started = now - dt.timedelta(days=2)
    with warehouse.connect() as wh:  # waits while the registry's writer holds the file
        wh.upsert(tables.TRAINING_RUNS, [
            {"run_id": f"run-{n}", "dataset_version": f"v{n}", "status": "succeeded", "epochs": 4,
             "started_at": started + dt.timedelta(hours=n), "macro_f1": 0.7 + n / 20, "accuracy": 0.75 + n / 20}
            for n in (1, 2)
        ])  # fmt: skip
        wh.upsert(tables.EPOCH_METRICS, [
            {"run_id": "run-2", "phase": phase, "epoch": e, "loss": 1.5 / (e + 1), "val_loss": 1.7 / (e + 1),
             "val_macro_f1": 0.4 + e / 10}
            for phase in ("head", "finetune") for e in range(4)
        ])  # fmt: skip
        wh.upsert(tables.CLASS_METRICS, [
            {"run_id": f"run-{n}", "label": label, "label_index": i, "recall": 0.6 + n / 10 - i / 20}
            for n in (1, 2) for i, label in enumerate(("lavender-soap", "rose-bath-bomb", XSS))
        ])  # fmt: skip


class Tab:
    """One browser context (its own cookies) that records every console error and screenshots pages."""

    def __init__(self, browser: Any, base: str, shots: Path, who: str) -> None:
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("requestfailed", lambda req: self.errors.append(f"{req.url}: {req.failure}"))
        self.base, self.shots, self.who = base, shots, who

    def open(self, path: str, shot: str) -> Any:
        self.page.goto(self.base + path)
        self.shoot(shot)
        return self.page

    def shoot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{self.who}-{name}.png"), full_page=True)

    def login(self, key: str) -> None:
        self.page.goto(self.base + "/console/login")
        self.page.fill("#key", key)
        with self.page.expect_navigation():  # the next goto must not abort the redirect still loading
            self.page.click("button[type=submit]")

    def close(self) -> None:
        self.context.close()


def _api(server: Server, token: str, path: str) -> Any:
    answer = httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    answer.raise_for_status()
    return answer.json()


def test_reader_looks_publisher_ships_and_rolls_back(chromium: Any, registry: Any, tmp_path: Path) -> None:
    server, tokens = registry
    shots = tmp_path / "screenshots"
    shots.mkdir()

    reader = Tab(chromium, server.url, shots, "reader")
    reader.login(tokens["reader"])
    overview = reader.open("/console/", "overview")
    assert overview.locator("h1").inner_text() == "What runs where"
    assert "v1" in overview.locator("table.grid tbody tr").first.inner_text()
    model = reader.open(f"/console/models/{MODEL}", "model")
    assert model.locator("#point-alias").count() == 0 and model.locator("form.rollback").count() == 0
    version = reader.open(f"/console/models/{MODEL}/versions/2", "version")
    # The product name is text on the page, not a script (it would also have logged a CSP error).
    assert version.locator("#recall td", has_text=XSS).count() == 1
    assert version.locator("#latency-chart").is_visible() and version.locator("#recall-chart").is_visible()
    field = reader.open(f"/console/models/{MODEL}/field", "field")
    assert field.locator("#field tbody tr").count() >= 4 and field.locator("#field-chart").is_visible()
    training = reader.open("/console/training", "training")
    assert training.locator("#runs tbody tr").count() == 2 and training.locator("#class-chart").is_visible()
    assert training.locator("#epoch-chart").is_visible()
    version = reader.open(f"/console/models/{MODEL}/versions/2", "version")
    drawn = version.evaluate("() => Chart.getChart('latency-chart').data.datasets.map(d => d.label)")
    assert sorted(drawn) == ["onnx_int8 p90", "tflite_fp32 p90", "tflite_int8 p90"]
    # A reader's forged action (same site, with the reader's own CSRF token) is refused.
    reader.open(f"/console/models/{MODEL}", "model-again")
    csrf = reader.page.locator("header input[name=csrf]").get_attribute("value")
    refused = reader.page.request.post(
        f"{server.url}/console/models/{MODEL}/alias",
        form={"csrf": csrf, "alias": "canary", "version": "2", "rollout_percent": "10", "reason": "sneaky"},
        headers={"Origin": server.url},
    )
    assert refused.status == 403

    publisher = Tab(chromium, server.url, shots, "publisher")
    publisher.login(tokens["publisher"])
    page = publisher.open(f"/console/models/{MODEL}", "model")
    page.fill("#point-alias input[name=alias]", "canary")
    page.select_option("#point-alias select[name=version]", "2")
    page.fill("#point-alias input[name=rollout_percent]", "10")
    page.fill("#point-alias input[name=reason]", "canary for the spring range")
    with page.expect_navigation():
        page.click("#point-alias button[type=submit]")
    publisher.shoot("after-move")
    assert "Done: set alias of canary v1 (100 %) → v2 (10 %)" in page.locator(".notice").inner_text()
    row = page.locator('tr[data-alias="canary"]').inner_text()
    assert "v2" in row and "10 %" in row

    audit = _api(server, tokens["reader"], f"/v1/models/{MODEL}/audit")[0]
    assert (audit["alias"], audit["to_version"], audit["to_rollout"], audit["actor"]) == (
        "canary",
        2,
        10,
        "publisher-key",
    )
    assert audit["reason"] == "canary for the spring range"
    top = page.locator("#audit tbody tr").first
    assert top.get_attribute("data-audit") == str(audit["id"]) and "canary for the spring range" in top.inner_text()
    served = {
        _api(server, tokens["device"], f"/v1/models/{MODEL}/manifest?alias=canary&device_id=d{n}")["version"]
        for n in range(60)
    }
    assert served == {1, 2}  # 10 %: some devices in the canary get v2, the others keep v1

    page.fill('tr[data-alias="canary"] input[name=reason]', "crash rate up on galaxy-a14")
    with page.expect_navigation():
        page.click('tr[data-alias="canary"] button.danger')
    publisher.shoot("after-rollback")
    row = page.locator('tr[data-alias="canary"]').inner_text()
    assert "v1" in row and "100 %" in row and "rolled back" in row
    audit = _api(server, tokens["reader"], f"/v1/models/{MODEL}/audit")[0]
    assert (audit["action"], audit["to_version"], audit["reason"]) == ("rollback", 1, "crash rate up on galaxy-a14")
    manifest = _api(server, tokens["device"], f"/v1/models/{MODEL}/manifest?alias=canary&device_id=d1")
    assert manifest["version"] == 1 and manifest["rollback"] is True

    publisher.open("/console/", "overview")
    for tab in (reader, publisher):
        assert tab.errors == [], tab.errors
        tab.close()
    assert len(list(shots.glob("*.png"))) >= 7


def test_device_cannot_log_in_and_a_cross_site_post_fails(chromium: Any, registry: Any, tmp_path: Path) -> None:
    server, tokens = registry
    shots = tmp_path / "screenshots"
    shots.mkdir()
    device = Tab(chromium, server.url, shots, "device")
    device.login(tokens["device"])
    device.shoot("login-refused")
    assert "device key cannot log in" in device.page.locator(".error").inner_text()
    assert all(c["name"] != "edgeloop_console" for c in device.context.cookies())
    assert device.page.locator("#key").is_visible()  # the form again, to try another key
    device.close()

    # A logged-in publisher visits another site, whose page posts a form to the console.
    victim = Tab(chromium, server.url, shots, "victim")
    victim.login(tokens["publisher"])
    victim.open(f"/console/models/{MODEL}", "model")
    attack = (
        f'<form id="f" method="post" action="{server.url}/console/models/{MODEL}/alias">'
        '<input name="alias" value="production"><input name="version" value="2">'
        '<input name="rollout_percent" value="100"><input name="reason" value="pwned"><input name="csrf" value="x">'
        "</form>"
    )
    # The attacker's page is served by the browser's router (it is the other site, not our service).
    victim.page.route(f"{EVIL}/**", lambda route: route.fulfill(content_type="text/html", body=attack))
    victim.page.goto(f"{EVIL}/prize")
    with victim.page.expect_navigation():
        victim.page.evaluate("() => document.getElementById('f').submit()")
    victim.shoot("cross-site-post")
    assert "cross-site request refused" in victim.page.locator(".error").inner_text()
    production = _api(server, tokens["reader"], f"/v1/models/{MODEL}/aliases/production")
    assert production["version"] == 1
    assert all(e["reason"] != "pwned" for e in _api(server, tokens["reader"], f"/v1/models/{MODEL}/audit"))
    victim.close()
