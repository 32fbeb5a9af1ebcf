"""Manifest and file verification: every tampered, replayed, rolled-back or foreign update is refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from edge_testkit import LABELS, signed_manifest

import edge
from edge import Expectations, check_file, check_manifest

URL = "/v1/artifacts/x"


def expect(version: int | None = 1, labels: list[str] | None = None, **kw: Any) -> Expectations:
    return Expectations(model="shelf-products", installed_version=version, installed_labels=labels or LABELS, **kw)


def test_valid_manifest_passes(signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path) -> None:
    raw = signed_manifest(signing_key, onnx_v2, version=2, url=URL, labels=[*LABELS, "cedar-deodorant"])
    manifest = check_manifest(json.dumps(raw), public_keys, expect())
    assert manifest.version == 2 and manifest.labels[:3] == LABELS


def test_any_tampered_byte_is_rejected(signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path) -> None:
    raw = signed_manifest(signing_key, onnx_v2, version=2, url=URL, labels=[*LABELS, "cedar-deodorant"])
    body = json.dumps(raw, separators=(",", ":")).encode()
    rejected = 0
    for i in range(len(body)):
        for flip in (0x01, 0x20):
            tampered = bytearray(body)
            tampered[i] ^= flip
            with pytest.raises(edge.VerificationError):
                check_manifest(bytes(tampered), public_keys, expect())
            rejected += 1
    print(f"\ntampered manifests rejected: {rejected}/{2 * len(body)} (every byte, two bit flips each)")
    assert rejected == 2 * len(body)


def test_unknown_key_and_unsigned_are_rejected(signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = signed_manifest(Ed25519PrivateKey.generate(), onnx_v2, version=2, url=URL)
    with pytest.raises(edge.ManifestError, match="does not verify"):
        check_manifest(other, public_keys, expect())  # right key id, wrong key
    foreign = signed_manifest(signing_key, onnx_v2, version=2, url=URL, key_id="rogue")
    with pytest.raises(edge.ManifestError, match="unknown key"):
        check_manifest(foreign, public_keys, expect())
    unsigned = {**signed_manifest(signing_key, onnx_v2, version=2, url=URL), "signature": ""}
    with pytest.raises(edge.ManifestError):
        check_manifest(unsigned, public_keys, expect())


def test_expired_manifest_is_rejected(signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path) -> None:
    old = signed_manifest(
        signing_key, onnx_v2, version=2, url=URL, issued_ago=dt.timedelta(days=10), expires_in=dt.timedelta(days=1)
    )
    with pytest.raises(edge.ManifestExpired, match="expired"):
        check_manifest(old, public_keys, expect())
    future = signed_manifest(signing_key, onnx_v2, version=2, url=URL, issued_ago=-dt.timedelta(hours=2))
    with pytest.raises(edge.ManifestExpired, match="future"):
        check_manifest(future, public_keys, expect())
    print("\nexpired (9 days past) and future-issued (+2 h) manifests rejected")


def test_rollback_is_refused_unless_signed_as_one(signing_key: Any, public_keys: dict[str, Any], onnx_v1: Path) -> None:
    lower = signed_manifest(signing_key, onnx_v1, version=1, url=URL)
    with pytest.raises(edge.RollbackRefused, match="below installed v3"):
        check_manifest(lower, public_keys, expect(version=3))
    issued = signed_manifest(signing_key, onnx_v1, version=1, url=URL, rollback=True)
    assert check_manifest(issued, public_keys, expect(version=3)).rollback
    # Flipping the rollback flag on the lower manifest breaks its signature.
    with pytest.raises(edge.ManifestError):
        check_manifest({**lower, "rollback": True}, public_keys, expect(version=3))
    print("\nunsigned rollback v3 -> v1 refused; registry-signed rollback accepted; forged flag rejected")


def test_wrong_model_runtime_or_labels_are_rejected(
    signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path
) -> None:
    other = signed_manifest(signing_key, onnx_v2, version=2, url=URL, model="someone-else")
    with pytest.raises(edge.WrongModel, match="someone-else"):
        check_manifest(other, public_keys, expect())
    renumbered = signed_manifest(
        signing_key, onnx_v2, version=2, url=URL, labels=["rose-bath-bomb", "lavender-soap", "mint-shampoo-bar"]
    )
    with pytest.raises(edge.WrongModel, match="index 0"):
        check_manifest(renumbered, public_keys, expect())
    fewer = signed_manifest(signing_key, onnx_v2, version=2, url=URL, labels=LABELS[:2])
    with pytest.raises(edge.WrongModel, match="<missing>"):
        check_manifest(fewer, public_keys, expect())
    assert check_manifest(renumbered, public_keys, expect(allow_label_changes=True)).labels[0] == "rose-bath-bomb"
    tflite = signed_manifest(signing_key, onnx_v2, version=2, url=URL, variant="tflite_fp32")
    with pytest.raises(edge.WrongModel, match="needs litert"):
        check_manifest(tflite, public_keys, expect(runtimes=("onnxruntime",)))


def test_file_with_one_flipped_bit_fails_integrity(
    signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path, tmp_path: Path
) -> None:
    manifest = check_manifest(signed_manifest(signing_key, onnx_v2, version=2, url=URL), public_keys, expect())
    data = bytearray(onnx_v2.read_bytes())
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(data)
    check_file(copy, manifest)
    data[len(data) // 2] ^= 0x04
    copy.write_bytes(data)
    with pytest.raises(edge.IntegrityError, match="sha256"):
        check_file(copy, manifest)
    copy.write_bytes(onnx_v2.read_bytes() + b"\0")
    with pytest.raises(edge.IntegrityError, match="manifest says"):
        check_file(copy, manifest)


def test_manifest_for_another_alias_is_rejected(signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path) -> None:
    canary = signed_manifest(signing_key, onnx_v2, version=2, url=URL, alias="canary")
    with pytest.raises(edge.WrongModel, match=r"alias 'canary'.*follows 'production'"):
        check_manifest(canary, public_keys, expect())
    assert check_manifest(canary, public_keys, expect(alias="canary")).alias == "canary"


def test_sequence_below_the_one_seen_is_a_replay(signing_key: Any, public_keys: dict[str, Any], onnx_v2: Path) -> None:
    old = signed_manifest(signing_key, onnx_v2, version=2, url=URL, sequence=4)
    with pytest.raises(edge.StaleManifest, match="older than sequence 5 already seen"):
        check_manifest(old, public_keys, expect(seen_sequence=5))
    assert isinstance(edge.StaleManifest("x"), edge.RollbackRefused)  # apps catching rollbacks catch replays
    # The same sequence again is the normal case: the same alias state, re-issued or re-polled.
    assert check_manifest(old, public_keys, expect(seen_sequence=4)).sequence == 4
    assert check_manifest(old, public_keys, expect(seen_sequence=None)).sequence == 4  # a store from before


def test_replayed_rollback_is_refused_a_newer_one_accepted(
    signing_key: Any, public_keys: dict[str, Any], onnx_v1: Path
) -> None:
    # v3 was installed by a manifest of sequence 6; a rollback to v1 signed at sequence 5 predates it.
    replayed = signed_manifest(signing_key, onnx_v1, version=1, url=URL, rollback=True, sequence=5)
    with pytest.raises(edge.RollbackRefused, match="not newer than sequence 6 that installed v3"):
        check_manifest(replayed, public_keys, expect(version=3, installed_sequence=6))
    with pytest.raises(edge.RollbackRefused, match="not newer"):
        check_manifest(replayed, public_keys, expect(version=3, installed_sequence=5))
    fresh = signed_manifest(signing_key, onnx_v1, version=1, url=URL, rollback=True, sequence=7)
    assert check_manifest(fresh, public_keys, expect(version=3, installed_sequence=6, seen_sequence=6)).rollback
    # A model installed before sequences existed (or bundled) has none: a signed rollback is enough.
    assert check_manifest(replayed, public_keys, expect(version=3, installed_sequence=None)).rollback
