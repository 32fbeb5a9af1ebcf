"""The console at /console: sessions, CSRF, who may act, and pages that show what the API says (in-process)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from registry_api import create_app
from registry_api.testing import Harness, create_keys, make_package

MODEL = "shelf-products"
XSS = "<script>alert('x')</script>"


def login(client: TestClient, key: str) -> Any:
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return client.post(
        "/console/login", data={"key": key, "csrf": csrf.group(1), "next": "/console/"}, follow_redirects=False
    )


def csrf_of(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None, path
    return found.group(1)


@pytest.fixture()
def two_versions(harness: Harness, tmp_path: Path) -> Harness:
    recall = {"class_recall": {"lavender-soap": 0.9, "rose-bath-bomb": 0.8, XSS: 0.7}, "macro_f1": 0.81}
    labels = ("lavender-soap", "rose-bath-bomb", XSS)
    assert harness.publish(make_package(tmp_path / "v1", run="run-1", labels=labels, metrics=recall)).status_code == 201
    assert harness.publish(make_package(tmp_path / "v2", run="run-2", labels=labels, metrics=recall)).status_code == 201
    assert harness.set_alias("production", {"version": 1, "reason": "first"}).status_code == 200
    assert harness.set_alias("canary", {"version": 1, "reason": "first"}).status_code == 200
    return harness


@pytest.fixture()
def browser_of(two_versions: Harness) -> Iterator[Any]:
    """A fresh cookie jar per user, on the harness's app."""
    clients: list[TestClient] = []

    def make(key: str) -> TestClient:
        client = TestClient(two_versions.client.app)
        clients.append(client)
        assert login(client, key).status_code == 303
        return client

    yield make
    for client in clients:
        client.close()


def test_login_sets_a_strict_httponly_expiring_cookie_without_the_key(two_versions: Harness) -> None:
    client = TestClient(two_versions.client.app)
    answer = login(client, two_versions.reader)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("edgeloop_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie  # plain http here
    assert two_versions.reader.split("_", 2)[2] not in cookie  # the secret never travels in the cookie
    page = client.get("/console/")
    assert page.status_code == 200 and MODEL in page.text
    assert (
        page.headers["cache-control"] == "no-store" and "script-src 'self'" in page.headers["content-security-policy"]
    )


def test_cookie_is_secure_over_https(two_versions: Harness) -> None:
    client = TestClient(two_versions.client.app, base_url="https://testserver")
    cookie = next(c for c in login(client, two_versions.reader).headers.get_list("set-cookie") if "console=" in c)
    assert "Secure" in cookie


def test_device_key_cannot_log_in_and_no_session_goes_to_login(two_versions: Harness) -> None:
    client = TestClient(two_versions.client.app)
    refused = login(client, two_versions.device)
    assert refused.status_code == 403 and "device key cannot log in" in refused.text
    assert "edgeloop_console=" not in refused.headers.get("set-cookie", "")
    assert login(client, "elk_000000000000_nope").status_code == 401
    away = client.get(f"/console/models/{MODEL}", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == f"/console/login?next=/console/models/{MODEL}"


def test_login_next_is_only_a_console_path(two_versions: Harness) -> None:
    client = TestClient(two_versions.client.app)
    csrf = csrf_of(client, "/console/login?next=//evil.example/")
    answer = client.post(
        "/console/login",
        data={"key": two_versions.reader, "csrf": csrf, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console/"


def test_qa_may_look_reader_may_not_act(browser_of: Any, two_versions: Harness) -> None:
    qa = browser_of(two_versions.qa)
    assert qa.get(f"/console/models/{MODEL}/versions/2").status_code == 200
    reader = browser_of(two_versions.reader)
    page = reader.get(f"/console/models/{MODEL}")
    assert "Point an alias" not in page.text and "Roll back" not in page.text
    form = {"csrf": csrf_of(reader, f"/console/models/{MODEL}"), "alias": "canary", "version": "2"}
    answer = reader.post(f"/console/models/{MODEL}/alias", data={**form, "rollout_percent": "10", "reason": "r"})
    assert answer.status_code == 403 and "publisher key" in answer.text
    aliases = two_versions.client.get(f"/v1/models/{MODEL}/aliases", headers=two_versions.auth(two_versions.reader))
    assert [(a["name"], a["version"]) for a in aliases.json()] == [("canary", 1), ("production", 1)]


def test_publisher_moves_canary_and_rolls_back_and_api_agrees(browser_of: Any, two_versions: Harness) -> None:
    h = two_versions
    pub = browser_of(h.publisher)
    csrf = csrf_of(pub, f"/console/models/{MODEL}")
    form = {"csrf": csrf, "alias": "canary", "version": "2", "rollout_percent": "10", "reason": f"try {XSS}"}
    moved = pub.post(f"/console/models/{MODEL}/alias", data=form)
    assert moved.status_code == 200 and "Done: set alias of <b>canary</b>" in moved.text
    assert XSS not in moved.text and "try &lt;script&gt;" in moved.text
    audit = h.client.get(f"/v1/models/{MODEL}/audit", headers=h.auth(h.reader)).json()[0]
    assert (audit["action"], audit["alias"], audit["to_version"], audit["to_rollout"]) == ("set_alias", "canary", 2, 10)
    assert audit["actor"] == "publisher-key" and audit["reason"] == f"try {XSS}"
    # 10 %: some device is in the canary and gets v2 at once.
    served = {h.manifest(alias="canary", device_id=f"d{n}").json()["version"] for n in range(60)}
    assert served == {1, 2}

    back = pub.post(f"/console/models/{MODEL}/aliases/canary/rollback", data={"csrf": csrf, "reason": "crashes"})
    assert back.status_code == 200 and "rollback of <b>canary</b>" in back.text
    alias = h.client.get(f"/v1/models/{MODEL}/aliases/canary", headers=h.auth(h.reader)).json()
    assert (alias["version"], alias["rollout_percent"], alias["rollback"]) == (1, 100, True)
    assert h.manifest(alias="canary", device_id="d1").json()["version"] == 1
    row = re.search(r'<tr data-alias="canary">(.*?)</tr>', back.text, re.S)
    assert row is not None and ">v1<" in row.group(1) and "rolled back" in row.group(1)


def test_action_keeps_targeting_and_budget(browser_of: Any, two_versions: Harness) -> None:
    h = two_versions
    h.set_alias("canary", {"version": 1, "targeting": {"platforms": ["android"]}, "latency_budget_ms": 30})
    pub = browser_of(h.publisher)
    csrf = csrf_of(pub, f"/console/models/{MODEL}")
    pub.post(
        f"/console/models/{MODEL}/alias",
        data={"csrf": csrf, "alias": "canary", "version": "2", "rollout_percent": "10", "reason": "r"},
    )
    alias = h.client.get(f"/v1/models/{MODEL}/aliases/canary", headers=h.auth(h.reader)).json()
    assert alias["targeting"]["platforms"] == ["android"] and alias["latency_budget_ms"] == 30


@pytest.mark.parametrize(
    ("headers", "csrf", "why"),
    [
        ({}, None, "CSRF token"),
        ({}, "forged", "CSRF token"),
        ({"Origin": "https://evil.example"}, "good", "cross-site"),
        ({"Sec-Fetch-Site": "cross-site"}, "good", "cross-site"),
    ],
)
def test_cross_site_post_is_refused(
    browser_of: Any, two_versions: Harness, headers: dict[str, str], csrf: str | None, why: str
) -> None:
    pub = browser_of(two_versions.publisher)
    form = {"alias": "canary", "version": "2", "rollout_percent": "10", "reason": "r"}
    if csrf is not None:
        form["csrf"] = csrf_of(pub, f"/console/models/{MODEL}") if csrf == "good" else csrf
    answer = pub.post(f"/console/models/{MODEL}/alias", data=form, headers=headers)
    assert answer.status_code == 403 and why in answer.text
    audit = two_versions.client.get(f"/v1/models/{MODEL}/audit", headers=two_versions.auth(two_versions.reader))
    assert audit.json()[0]["reason"] == "first"  # nothing was written after the fixture's moves


def test_same_origin_post_with_token_passes(browser_of: Any, two_versions: Harness) -> None:
    pub = browser_of(two_versions.publisher)
    form = {"csrf": csrf_of(pub, f"/console/models/{MODEL}"), "alias": "canary", "version": "2"}
    answer = pub.post(
        f"/console/models/{MODEL}/alias",
        data={**form, "rollout_percent": "10", "reason": "r"},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 200


def test_bad_form_says_which_field(browser_of: Any, two_versions: Harness) -> None:
    pub = browser_of(two_versions.publisher)
    form = {"csrf": csrf_of(pub, f"/console/models/{MODEL}"), "alias": "canary", "version": "2"}
    answer = pub.post(f"/console/models/{MODEL}/alias", data={**form, "rollout_percent": "150", "reason": ""})
    assert answer.status_code == 422 and "rollout_percent" in answer.text and "reason" in answer.text


def test_revoked_key_ends_the_session_within_the_cache_ttl(
    registry_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGELOOP_REGISTRY_KEYS_CACHE_TTL_S", "0")  # every request reloads the keys
    tokens = create_keys()
    with TestClient(create_app()) as client:
        assert login(client, tokens["reader"]).status_code == 303
        assert client.get("/console/").status_code == 200
        from registry_api import crud
        from registry_api.state import Registry

        registry: Registry = client.app.state.registry  # type: ignore[attr-defined]
        with registry.sessions.begin() as session:
            crud.revoke_key(session, "reader-key")
        away = client.get("/console/", follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"].startswith("/console/login")


def test_expired_or_forged_session_is_refused(two_versions: Harness) -> None:
    client = TestClient(two_versions.client.app)
    login(client, two_versions.reader)
    secret = (two_versions.workspace / "registry" / "console_secret").read_bytes()

    class Old(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 3600 - 1  # one second past the session lifetime

    key_id = two_versions.reader.split("_")[1]
    old = URLSafeTimedSerializer(secret, salt="edgeloop.console.session", signer=Old).dumps({"k": key_id, "c": "t"})
    forged = URLSafeTimedSerializer(b"not-the-secret" * 4, salt="edgeloop.console.session").dumps(
        {"k": key_id, "c": "t"}
    )
    for value in (old, forged):
        client.cookies.clear()
        client.cookies.set("edgeloop_console", value, path="/console")
        assert client.get("/console/", follow_redirects=False).status_code == 303
    fresh = URLSafeTimedSerializer(secret, salt="edgeloop.console.session").dumps({"k": key_id, "c": "t"})
    client.cookies.clear()
    client.cookies.set("edgeloop_console", fresh, path="/console")
    assert client.get("/console/").status_code == 200


def test_version_page_shows_card_recall_and_escapes_labels(browser_of: Any, two_versions: Harness) -> None:
    reader = browser_of(two_versions.reader)
    page = reader.get(f"/console/models/{MODEL}/versions/2")
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "Per-class recall against v1" in page.text and "No benchmarks yet" in page.text
    data = re.search(r'id="recall-data">(.*?)</script>', page.text, re.S)
    assert data is not None and "<" not in data.group(1)  # JSON inside a script block cannot close it
    assert reader.get(f"/console/models/{MODEL}/versions/9").status_code == 404


def test_version_page_shows_failures_and_folds_passed_per_class_checks(
    browser_of: Any, two_versions: Harness, tmp_path: Path
) -> None:
    from edgeloop.card import GateCheck

    checks = (
        GateCheck(name="min_accuracy", threshold=0.9, value=0.95, passed=True),
        *(GateCheck(name=f"min_class_recall:soap-{i}", threshold=0.75, value=0.9, passed=True) for i in range(20)),
        GateCheck(name="min_class_recall:rose-bath-bomb", threshold=0.75, value=0.5, passed=False),
    )
    folder = make_package(
        tmp_path / "v3", run="run-3", verdict="forced", checks=checks
    )  # a failed gate ships only forced
    assert two_versions.publish(folder).status_code == 201
    page = browser_of(two_versions.reader).get(f"/console/models/{MODEL}/versions/3")
    shown = re.search(r'<table class="grid" id="gate">(.*?)</table>', page.text, re.S)
    folded = re.search(r"<details[^>]*><summary>(.*?)</summary>(.*?)</details>", page.text, re.S)
    assert shown is not None and folded is not None
    names = re.findall(r'<tr class="(?:ok|bad)">\s*<td>([^<]+)', shown.group(1))
    assert names == ["min_class_recall:rose-bath-bomb", "min_accuracy"]  # the failure first, nothing hidden of it
    assert folded.group(1) == "20 per-class checks passed" and folded.group(2).count("<tr") == 20


def test_vendored_chart_js_is_the_recorded_file(two_versions: Harness) -> None:
    answer = two_versions.client.get("/console/static/chart.umd.min.js")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/javascript")
    readme = (Path(__file__).parents[2] / "registry_api/console/static/vendor/README.md").read_text()
    assert hashlib.sha256(answer.content).hexdigest() in readme and "4.6.1" in readme
    assert two_versions.client.get("/console/static/..%2Fauth.py").status_code == 404
    again = two_versions.client.get("/console/static/console.js", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 200  # another file's ETag does not match


# --------------------------------------------------------------------------- pages 4-5: the warehouse, read-only


def _telemetry(h: Harness) -> None:
    from edge.events import TelemetryBatch, TelemetryEvent

    events = [
        TelemetryEvent(
            device_id=f"d{i}",
            kind="inference",
            model=MODEL,
            version=1 + i % 2,
            variant="tflite_int8",
            device_class="pixel-6a",
            latency_ms=float(10 + i % 10),
            top1_label="lavender-soap",
            top1_score=0.3 if i % 4 == 0 else 0.9,
        )
        for i in range(40)
    ]
    events += [
        TelemetryEvent(device_id="d1", kind="error", model=MODEL, version=2, device_class="pixel-6a"),
        TelemetryEvent(device_id="d1", kind="rollback", model=MODEL, version=2, device_class="pixel-6a"),
    ]
    body = TelemetryBatch(events=events).model_dump_json()
    answer = h.client.post("/v1/telemetry", content=body, headers=h.auth(h.device))
    assert answer.status_code == 200, answer.text


def _writer_released(h: Harness) -> None:
    """Wait (by event, bounded) until the telemetry writer let go of the DuckDB file."""
    writer = h.client.app.state.registry.writer  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while writer._wh is not None:
        assert time.monotonic() < deadline, "the telemetry writer kept the warehouse file"
        time.sleep(0.05)


def test_field_health_aggregates_telemetry(browser_of: Any, two_versions: Harness) -> None:
    reader = browser_of(two_versions.reader)
    empty = reader.get(f"/console/models/{MODEL}/field")
    assert empty.status_code == 200 and "has no data yet" in empty.text
    _telemetry(two_versions)
    page = reader.get(f"/console/models/{MODEL}/field")
    assert page.status_code == 200
    rows = re.findall(
        r"<tr( class=\"bad\")?>\s*<td class=\"nowrap\">[0-9-]+</td>\s*<td>v(\d)(.*?)</tr>", page.text, re.S
    )
    by_version = {version: (bad, rest) for bad, version, rest in rows}
    assert set(by_version) == {"1", "2"}
    bad, rest = by_version["2"]
    assert bad and '<span class="pill">' not in rest  # v2 had the error and the rollback; no alias points at it
    # Every fourth inference scored 0.3, all of them v1's (the even ones): half of v1's answers, none of v2's.
    assert "50.0 %" in by_version["1"][1] and "0.0 %" in by_version["2"][1]
    assert "14.0 ms" in by_version["1"][1] and "18.0 ms" in by_version["1"][1]  # p50, p95 of 10,12,…,18 × 4
    assert "No release-health decisions yet" in page.text
    assert reader.get("/console/models/nope/field").status_code == 404


def test_field_page_shows_the_psi_release_health_computes(browser_of: Any, two_versions: Harness) -> None:
    """A known drift: the page's PSI per version (and per device class) is release health's, on the same rows."""
    from dags import _health
    from dags._settings import HealthThresholds
    from edge.events import TelemetryBatch, TelemetryEvent
    from edgeloop import stats, tables

    h = two_versions
    split = [{"dataset_version": "v1", "split": "eval", "label": label, "label_index": i, "examples": 10}
             for i, label in enumerate(("lavender-soap", "rose-bath-bomb", XSS))]  # fmt: skip
    h.client.app.state.registry.writer.call(lambda wh: wh.upsert(tables.DATASET_CLASSES, split)).result(60)  # type: ignore[attr-defined]
    # v2 answers mostly "lavender-soap" on phones and names a product the eval split never had on kiosks.
    said = {
        "pixel-6a": ["lavender-soap"] * 24 + ["rose-bath-bomb"] * 4 + [XSS] * 2,
        "kiosk": ["new-soap"] * 5 + [XSS] * 5,
    }
    events = [
        TelemetryEvent(device_id=f"d{i}", kind="inference", model=MODEL, version=2, variant="tflite_int8",
                       device_class=cls, latency_ms=10.0, top1_label=label, top1_score=0.9)
        for cls, labels in said.items()
        for i, label in enumerate(labels)
    ]  # fmt: skip
    answer = h.client.post(
        "/v1/telemetry", content=TelemetryBatch(events=events).model_dump_json(), headers=h.auth(h.device)
    )
    assert answer.status_code == 200, answer.text

    def release_health(wh: Any) -> Any:
        now = dt.datetime.now(dt.UTC)
        canary = _health.collect_stats(wh, MODEL, "2", now - dt.timedelta(days=1), now + dt.timedelta(minutes=1),
                                       low_confidence_score=0.5)  # fmt: skip
        return _health.decide(canary, HealthThresholds(), eval_labels=_health.eval_distribution(wh, "v1"))

    expected = h.client.app.state.registry.writer.call(release_health).result(60).metrics["psi"]  # type: ignore[attr-defined]
    assert expected > 0.25  # a drift release health rolls back for
    page = browser_of(h.reader).get(f"/console/models/{MODEL}/field")
    table = re.search(r'<table class="grid" id="drift">(.*?)</table>', page.text, re.S)
    assert table is not None, page.text
    rows = {
        (version, re.sub(r"<.*?>", "", cls)): float(psi)
        for version, cls, psi in re.findall(
            r"<td>v(\d)[^<]*(?:<span[^>]*>[^<]*</span>\s*)*</td>\s*<td>(.*?)</td>.*?<td class=\"num psi\">([0-9.]+)</td>",
            table.group(1),
            re.S,
        )
    }
    assert rows[("2", "all devices")] == pytest.approx(expected, abs=5e-4)  # shown to 3 decimals
    eval_split = {"lavender-soap": 10, "rose-bath-bomb": 10, XSS: 10}
    kiosk = stats.psi(eval_split, {stats.OTHER_LABEL: 5, XSS: 5})
    assert rows[("2", "kiosk")] == pytest.approx(kiosk, abs=5e-4)
    assert rows[("2", "pixel-6a")] == pytest.approx(stats.label_psi(eval_split, Counter(said["pixel-6a"])), abs=5e-4)
    assert "shifted" in table.group(1) and XSS not in page.text  # labels stay text here too
    assert table.group(1).count("too few answers to read") == 1  # the kiosks' 10 answers: shown, not read


def test_warehouse_pages_never_take_the_write_lock(browser_of: Any, two_versions: Harness) -> None:
    import subprocess
    import sys

    _telemetry(two_versions)
    _writer_released(two_versions)
    path = two_versions.workspace / "warehouse.duckdb"
    # Another process reads the file: a read-only page read may share it, a writing open could not.
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(path)!r}, read_only=True); "
         "print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        reader = browser_of(two_versions.reader)
        page = reader.get(f"/console/models/{MODEL}/field")
        assert page.status_code == 200 and "cannot be read" not in page.text and "pixel-6a" in page.text
        assert reader.get("/console/training").status_code == 200
    finally:
        holder.communicate("", timeout=60)


def test_training_page_and_overview_verdict(browser_of: Any, two_versions: Harness) -> None:
    from edgeloop import tables

    started = dt.datetime(2026, 11, 20, 7, 0, tzinfo=dt.UTC)
    runs = [
        {"run_id": f"run-{n}", "dataset_version": f"v{n}", "status": "succeeded", "started_at": started + dt.timedelta(days=n),
         "macro_f1": 0.7 + n / 10, "accuracy": 0.8, "epochs": 2, "backbone": XSS}
        for n in (1, 2)
    ]  # fmt: skip
    # A retrain still running is the newest run, but has no curves yet: the page opens on run-2.
    runs.append(
        {"run_id": "run-3", "dataset_version": "v3", "status": "running", "started_at": started + dt.timedelta(days=3)}
    )
    epochs = [
        {"run_id": "run-2", "phase": "head", "epoch": e, "loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), "val_macro_f1": 0.5 + e / 10}
        for e in range(3)
    ]  # fmt: skip
    classes = [
        {"run_id": f"run-{n}", "label": label, "label_index": i, "recall": 0.6 + n / 10 + i / 100}
        for n in (1, 2)
        for i, label in enumerate(("lavender-soap", "rose-bath-bomb"))
    ]
    decision = {"model": MODEL, "version": "2", "alias": "canary", "decided_on": dt.date(2026, 11, 23),
                "decision": "rollback", "reason": "error rate 3x production", "metrics": {"errors": 3},
                "decided_at": dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)}  # fmt: skip

    def fill(wh: Any) -> None:
        wh.upsert(tables.TRAINING_RUNS, runs)
        wh.upsert(tables.EPOCH_METRICS, epochs)
        wh.upsert(tables.CLASS_METRICS, classes)
        wh.upsert(tables.RELEASE_DECISIONS, [decision])

    two_versions.client.app.state.registry.writer.call(fill).result(60)  # type: ignore[attr-defined]
    reader = browser_of(two_versions.reader)
    page = reader.get("/console/training")
    assert page.status_code == 200 and 'Epochs of <span class="mono">run-2</span>' in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    data = re.search(r'id="epoch-data">(.*?)</script>', page.text, re.S)
    assert data is not None and len(json.loads(data.group(1))) == 3
    chosen = reader.get("/console/training?run=run-1")
    assert 'Epochs of <span class="mono">run-1</span>' in chosen.text and "recorded no epochs" in chosen.text
    overview = reader.get("/console/")
    assert "rollback</span>" in overview.text and "error rate 3x production" in overview.text
    field = reader.get(f"/console/models/{MODEL}/field")
    assert "error rate 3x production" in field.text


def test_logout_needs_the_token_and_ends_the_session(browser_of: Any, two_versions: Harness) -> None:
    reader = browser_of(two_versions.reader)
    assert reader.post("/console/logout", data={"csrf": "forged"}).status_code == 403
    assert reader.get("/console/", follow_redirects=False).status_code == 200  # still logged in
    out = reader.post("/console/logout", data={"csrf": csrf_of(reader, "/console/")}, follow_redirects=False)
    assert out.status_code == 303 and 'edgeloop_console=""' in out.headers["set-cookie"]
    assert reader.get("/console/", follow_redirects=False).status_code == 303


def test_model_page_lists_the_newest_versions_unless_asked_for_all(
    browser_of: Any, two_versions: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry_api.console import routes

    monkeypatch.setattr(routes, "VERSIONS_SHOWN", 1)
    reader = browser_of(two_versions.reader)
    page = reader.get(f"/console/models/{MODEL}")
    listed = re.findall(r'/versions/(\d)"><b>v\d</b>', page.text)
    assert listed == ["2"] and "newest 1 of 2" in page.text
    everything = reader.get(f"/console/models/{MODEL}?versions=all")
    assert re.findall(r'/versions/(\d)"><b>v\d</b>', everything.text) == ["2", "1"]
