"""The signing key cannot be published, served or guessed at, and a package is regular files only.

The attack: a publisher puts a symlink to the registry's `signing_key.pem` in a package
folder, reads the key's sha256 and size from the first refusal, publishes again with
those in the card, and any device key downloads the private key by its sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edgeloop.errors import ConfigError
from registry_api import create_app
from registry_api.testing import Harness, create_keys, make_package


def _key_path(harness: Harness) -> Path:
    path = harness.workspace / "registry" / "signing_key.pem"
    assert path.is_file(), "the registry generates its key on first start"
    return path


def _swap_in(pkg: Path, victim: Path, how: str) -> str:
    """Replace the first variant file of `pkg` by a link to `victim`; the card then claims the victim's bytes."""
    card = json.loads((pkg / "model_card.json").read_text())
    entry = card["variants"][0]
    target = pkg / entry["file"]
    target.unlink()
    if how == "symlink":
        target.symlink_to(victim)
    else:
        os.link(victim, target)
    data = victim.read_bytes()
    entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (pkg / "model_card.json").write_text(json.dumps(card))
    return entry["file"]


def _publish_uri(harness: Harness, pkg: Path) -> object:
    return harness.client.post(
        "/v1/models/shelf-products/versions", json={"package_uri": str(pkg)}, headers=harness.auth(harness.publisher)
    )


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_a_link_to_the_signing_key_is_refused_and_the_key_never_served(harness: Harness, how: str) -> None:
    key = _key_path(harness)
    key_sha = hashlib.sha256(key.read_bytes()).hexdigest()
    pkg = make_package(harness.workspace / "packages" / "run-1")
    name = _swap_in(pkg, key, how)

    response = _publish_uri(harness, pkg)  # type: ignore[assignment]
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    detail = response.json()["detail"]  # type: ignore[attr-defined]
    assert name in detail and ("symbolic link" in detail if how == "symlink" else "hard links" in detail), detail
    assert str(key.stat().st_size) not in detail.replace(name, "")

    download = harness.client.get(f"/v1/artifacts/{key_sha}", headers=harness.auth(harness.device))
    assert download.status_code == 404
    assert not any(p.is_file() for p in (harness.workspace / "registry" / "artifacts").rglob("*"))


def test_a_mismatch_names_the_file_and_the_cards_claim_never_the_contents(harness: Harness) -> None:
    secret = harness.workspace / "packages" / "secret.bin"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(b"s" * 1234)
    pkg = make_package(harness.workspace / "packages" / "run-1")
    card = json.loads((pkg / "model_card.json").read_text())
    claimed = card["variants"][0]
    (pkg / claimed["file"]).write_bytes(secret.read_bytes())  # a regular file whose content the card does not know

    detail = _publish_uri(harness, pkg).json()["detail"]  # type: ignore[attr-defined]
    assert claimed["file"] in detail and claimed["sha256"] in detail
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in detail
    assert "1234" not in detail


def test_the_card_itself_must_be_a_regular_file(harness: Harness, tmp_path: Path) -> None:
    outside = make_package(tmp_path / "outside")
    pkg = make_package(harness.workspace / "packages" / "run-1")
    (pkg / "model_card.json").unlink()
    (pkg / "model_card.json").symlink_to(outside / "model_card.json")
    response = _publish_uri(harness, pkg)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "symbolic link" in response.json()["detail"]  # type: ignore[attr-defined]


def test_a_fifo_is_refused_without_hanging(harness: Harness) -> None:
    pkg = make_package(harness.workspace / "packages" / "run-1")
    card = json.loads((pkg / "model_card.json").read_text())
    fifo = pkg / card["variants"][0]["file"]
    fifo.unlink()
    os.mkfifo(fifo)
    answers: list[object] = []
    # Opening a FIFO for reading blocks until a writer comes: the publish must not.
    thread = threading.Thread(target=lambda: answers.append(_publish_uri(harness, pkg)), daemon=True)
    thread.start()
    thread.join(120)  # a bound on a hang, not a speed assertion
    if not answers:
        with open(fifo, "wb"):  # release the blocked reader so the test process can exit
            pass
        pytest.fail("publishing a package holding a FIFO hung on the open")
    assert answers[0].status_code == 422  # type: ignore[attr-defined]
    assert "FIFO" in answers[0].json()["detail"]  # type: ignore[attr-defined]


def test_a_refused_upload_leaves_nothing_in_the_store(harness: Harness, tmp_path: Path) -> None:
    pkg = make_package(tmp_path / "pkg")
    card = json.loads((pkg / "model_card.json").read_text())
    last = pkg / card["variants"][-1]["file"]
    last.write_bytes(last.read_bytes() + b"tampered")  # every file but the last one checks out
    response = harness.publish(pkg)
    assert response.status_code == 422, response.text
    assert not any(p.is_file() for p in (harness.workspace / "registry" / "artifacts").rglob("*"))


def test_the_default_package_root_is_the_packages_folder_not_the_workspace(harness: Harness) -> None:
    for folder in (harness.workspace / "runs" / "run-1", harness.workspace / "registry" / "run-1"):
        response = _publish_uri(harness, make_package(folder))
        assert response.status_code == 422  # type: ignore[attr-defined]
        assert "outside the package roots" in response.json()["detail"]  # type: ignore[attr-defined]
    assert _publish_uri(harness, make_package(harness.workspace / "packages" / "run-1")).status_code == 201  # type: ignore[attr-defined]


@pytest.mark.parametrize("place", ["workspace as package root", "key in a package root", "key in the artifacts"])
def test_a_key_the_registry_could_serve_is_refused_at_start_up(
    registry_env: Path, monkeypatch: pytest.MonkeyPatch, place: str
) -> None:
    from registry_api.core.config import get_registry_settings
    from registry_api.core.security import generate_key_file

    if place == "workspace as package root":
        monkeypatch.setenv("EDGELOOP_REGISTRY_PACKAGE_ROOTS", json.dumps([str(registry_env)]))
    else:
        folder = registry_env / ("packages" if place == "key in a package root" else "registry/artifacts")
        key = folder / "keys" / "signing.pem"
        generate_key_file(key)
        monkeypatch.setenv("EDGELOOP_REGISTRY_SIGNING_KEY", str(key))
    get_registry_settings.cache_clear()
    with pytest.raises(ConfigError, match=r"signing key .* is inside the (package root|artifacts store)"):
        create_app()


def test_a_key_outside_every_root_or_given_as_a_secret_is_used(
    registry_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from registry_api.core.config import get_registry_settings

    seed = bytes(range(32))
    monkeypatch.setenv("EDGELOOP_REGISTRY_SIGNING_KEY", base64.b64encode(seed).decode())
    get_registry_settings.cache_clear()
    tokens = create_keys()
    with TestClient(create_app()) as client:
        keys = client.get("/v1/keys", headers={"Authorization": f"Bearer {tokens['device']}"}).json()["keys"]
    assert len(keys) == 1
    assert not (registry_env / "registry" / "signing_key.pem").exists(), "a configured key generates nothing"


def test_a_gcs_root_is_a_folder_not_a_string_prefix(registry_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_api.core.config import get_registry_settings

    monkeypatch.setenv("EDGELOOP_REGISTRY_PACKAGE_ROOTS", json.dumps(["gs://shop-ml/packages"]))
    get_registry_settings.cache_clear()
    tokens = create_keys()
    with TestClient(create_app()) as client:
        for uri in ("gs://shop-ml/packages-evil/run-1", "gs://shop-ml/packages/../registry/run-1"):
            response = client.post(
                "/v1/models/shelf-products/versions",
                json={"package_uri": uri},
                headers={"Authorization": f"Bearer {tokens['publisher']}"},
            )
            assert response.status_code == 422
            assert "outside the package roots" in response.json()["detail"], uri
