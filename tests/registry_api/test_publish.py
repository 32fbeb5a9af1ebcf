"""Publishing: byte checks, verdicts, idempotence, monotonic versions, by upload and by URI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeloop.card import CARD_NAME
from registry_api.testing import Harness, make_package


def test_upload_publishes_version_one_then_same_package_is_idempotent(harness: Harness, tmp_path: Path) -> None:
    pkg = make_package(tmp_path / "pkg")
    first = harness.publish(pkg)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["version"] == 1
    assert {v["variant"] for v in body["variants"]} == {"tflite_int8", "tflite_fp32", "onnx_fp32", "onnx_int8"}
    again = harness.publish(pkg)
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert again.json()["digest"] == body["digest"]
    second = harness.publish(make_package(tmp_path / "pkg2", run="run-2"))
    assert second.status_code == 201
    assert second.json()["version"] == 2
    audit = harness.client.get("/v1/models/shelf-products/audit", headers=harness.auth(harness.reader)).json()
    assert [(e["action"], e["to_version"], e["actor"]) for e in audit] == [
        ("publish", 2, "publisher-key"),
        ("publish", 1, "publisher-key"),
    ]


def test_files_are_stored_by_content(harness: Harness, tmp_path: Path) -> None:
    pkg = make_package(tmp_path / "pkg")
    version = harness.publish(pkg).json()
    root = harness.workspace / "registry" / "artifacts"
    for variant in version["variants"]:
        stored = root / variant["sha256"][:2] / variant["sha256"]
        assert stored.read_bytes() == (pkg / variant["file"]).read_bytes()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda card, pkg: card["variants"][0].update(sha256="0" * 64), "sha256"),
        (lambda card, pkg: card["variants"][1].update(size=card["variants"][1]["size"] + 1), "size"),
        (lambda card, pkg: card["gate"].update(verdict="fail"), "gate verdict"),
        (lambda card, pkg: card.update(gate=None), "no gate report"),
        (lambda card, pkg: [v.update(publishable=False) for v in card["variants"]], "parity"),
        (lambda card, pkg: card.update(name="other-model"), "names model"),
        (lambda card, pkg: card["variants"][0].update(runtime="onnxruntime"), "variant table"),
        (lambda card, pkg: (pkg / card["variants"][2]["file"]).write_bytes(b"tampered"), "sha256"),
    ],
    ids=["hash", "size", "gate-fail", "no-gate", "nothing-publishable", "wrong-name", "runtime-lie", "tampered-file"],
)
def test_bad_packages_are_refused(harness: Harness, tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    pkg = make_package(tmp_path / "pkg")
    card = json.loads((pkg / CARD_NAME).read_text())
    mutate(card, pkg)
    (pkg / CARD_NAME).write_text(json.dumps(card))
    response = harness.publish(pkg)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    listed = harness.client.get("/v1/models", headers=harness.auth(harness.reader)).json()
    assert listed == []


def test_missing_file_is_refused(harness: Harness, tmp_path: Path) -> None:
    pkg = make_package(tmp_path / "pkg")
    next(p for p in pkg.iterdir() if p.suffix == ".onnx").unlink()
    response = harness.publish(pkg)
    assert response.status_code == 422
    assert "missing" in response.json()["detail"]


def test_forced_verdict_is_published(harness: Harness, tmp_path: Path) -> None:
    response = harness.publish(make_package(tmp_path / "pkg", verdict="forced"))
    assert response.status_code == 201
    assert response.json()["gate_verdict"] == "forced"


def test_unpublishable_variant_is_stored_but_never_served(harness: Harness, tmp_path: Path) -> None:
    pkg = make_package(tmp_path / "pkg", unpublishable=("tflite_fp32",))
    version = harness.publish(pkg).json()
    bad = next(v for v in version["variants"] if v["variant"] == "tflite_fp32")
    assert bad["publishable"] is False
    assert (harness.workspace / "registry" / "artifacts" / bad["sha256"][:2] / bad["sha256"]).exists()
    download = harness.client.get(f"/v1/artifacts/{bad['sha256']}", headers=harness.auth(harness.device))
    assert download.status_code == 404
    harness.set_alias("production", {"version": 1})
    for runtime in ("litert", None):
        for device_class in ("a", "b"):
            params = {"runtime": runtime, "device_id": "d", "device_class": device_class}
            manifest = harness.manifest(**{k: v for k, v in params.items() if v})
            assert manifest.json()["variant"] != "tflite_fp32"


def test_register_by_uri(harness: Harness) -> None:
    pkg = make_package(harness.workspace / "packages" / "run-1")
    response = harness.client.post(
        "/v1/models/shelf-products/versions", json={"package_uri": str(pkg)}, headers=harness.auth(harness.publisher)
    )
    assert response.status_code == 201, response.text
    assert response.json()["source_uri"] == str(pkg.resolve())
    # The same bytes uploaded are the same package.
    assert harness.publish(pkg).status_code == 200


def test_register_by_uri_outside_roots_is_refused(harness: Harness, tmp_path: Path) -> None:
    pkg = make_package(tmp_path / "elsewhere")
    for uri in (str(pkg), str(harness.workspace / ".." / "elsewhere"), "/etc"):
        response = harness.client.post(
            "/v1/models/shelf-products/versions", json={"package_uri": uri}, headers=harness.auth(harness.publisher)
        )
        assert response.status_code == 422
        assert "outside the package roots" in response.json()["detail"]


@pytest.mark.gcs
def test_register_from_gcs_into_gcs_artifacts(
    registry_env: Path, gcs_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from edgeloop import storage
    from registry_api import create_app
    from registry_api.testing import create_keys

    monkeypatch.setenv("EDGELOOP_REGISTRY_ARTIFACTS_URI", f"{gcs_bucket}/artifacts")
    monkeypatch.setenv("EDGELOOP_REGISTRY_PACKAGE_ROOTS", json.dumps([f"{gcs_bucket}/packages/"]))
    pkg = make_package(tmp_path / "pkg")
    for path in pkg.iterdir():
        storage.upload(path, f"{gcs_bucket}/packages/run-1/{path.name}")
    tokens = create_keys()
    auth = {"Authorization": f"Bearer {tokens['publisher']}"}
    with TestClient(create_app()) as client:
        response = client.post(
            "/v1/models/shelf-products/versions", json={"package_uri": f"{gcs_bucket}/packages/run-1"}, headers=auth
        )
        assert response.status_code == 201, response.text
        sha = response.json()["variants"][0]["sha256"]
        assert storage.exists(f"{gcs_bucket}/artifacts/{sha[:2]}/{sha}")
        client.put("/v1/models/shelf-products/aliases/production", json={"version": 1}, headers=auth)
        got = client.get(f"/v1/artifacts/{sha}", headers={**auth, "Range": "bytes=10-19"})
        assert got.status_code == 206
        variant_file = next(p for p in pkg.iterdir() if p.name == response.json()["variants"][0]["file"])
        assert got.content == variant_file.read_bytes()[10:20]
        assert client.get("/readyz").json()["checks"]["storage"] == "ok"


def test_upload_over_the_cap_is_refused(registry_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from registry_api import create_app
    from registry_api.testing import create_keys, multipart

    monkeypatch.setenv("EDGELOOP_REGISTRY_MAX_PACKAGE_BYTES", "6000")
    tokens = create_keys()
    auth = {"Authorization": f"Bearer {tokens['publisher']}"}
    with TestClient(create_app()) as client:
        big = client.post(
            "/v1/models/shelf-products/versions", files=multipart(make_package(tmp_path / "p")), headers=auth
        )
        assert big.status_code == 413
        declared = client.post(
            "/v1/models/shelf-products/versions",
            content=b"--b--",
            headers={**auth, "content-type": "multipart/form-data; boundary=b", "content-length": "7000"},
        )
        assert declared.status_code == 413
        assert client.get("/v1/models", headers=auth).json() == []
