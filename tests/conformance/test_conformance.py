"""The Python SDK against every conformance vector (the TypeScript SDK runs the same file under vitest)."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

import edge
from edge import Expectations, check_file, check_manifest
from edge.manifest import canonical_bytes

HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))
KEYS = {kid: base64.b64decode(raw) for kid, raw in VECTORS["keys"].items()}
MANIFESTS = {case["name"]: case for case in VECTORS["manifest_cases"]}


def wire(case: dict[str, Any]) -> bytes:
    if "manifest_b64" in case:
        return base64.b64decode(case["manifest_b64"])
    return str(case["manifest"]).encode("utf-8")


def run(raw: bytes, case: dict[str, Any]) -> tuple[str, edge.Manifest | None]:
    """The verdict the SDK gives: "accept" or the name of the error it raised."""
    now = dt.datetime.fromisoformat(case["now"])
    try:
        return "accept", check_manifest(raw, KEYS, Expectations(**case["expect"]), now=now)
    except edge.VerificationError as exc:
        return type(exc).__name__, None


def test_vectors_are_current() -> None:
    spec = importlib.util.spec_from_file_location("conformance_generate", HERE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (HERE / "vectors.json").read_text(encoding="utf-8"), (
        "tests/conformance/vectors.json is out of date: run python tests/conformance/generate.py"
    )


@pytest.mark.parametrize("case", VECTORS["manifest_cases"], ids=lambda c: c["name"])
def test_manifest_case(case: dict[str, Any]) -> None:
    raw = wire(case)
    if case.get("mode") == "tamper_every_byte":
        verdicts = set()
        for i in range(len(raw)):
            for flip in case["flips"]:
                tampered = bytearray(raw)
                tampered[i] ^= flip
                verdicts.add(run(bytes(tampered), case)[0])
        assert verdicts == {case["verdict"]}, f"{len(raw) * len(case['flips'])} tamperings gave {verdicts}"
        return
    verdict, _ = run(raw, case)
    assert verdict == case["verdict"], case["description"]


@pytest.mark.parametrize("case", VECTORS["file_cases"], ids=lambda c: c["name"])
def test_file_case(case: dict[str, Any], tmp_path: Path) -> None:
    source = MANIFESTS[case["manifest_case"]]
    verdict, manifest = run(wire(source), source)
    assert verdict == "accept" and manifest is not None
    path = tmp_path / "model.bin"
    path.write_bytes(base64.b64decode(case["file_b64"]))
    try:
        check_file(path, manifest)
        got = "accept"
    except edge.VerificationError as exc:
        got = type(exc).__name__
    assert got == case["verdict"], case["description"]


@pytest.mark.parametrize("case", VECTORS["canonical_cases"], ids=lambda c: c["name"])
def test_canonical_case(case: dict[str, Any]) -> None:
    from edge.manifest import parse  # the SDK's strict wire parser

    try:
        got: str | None = canonical_bytes(parse(case["json"])).decode("utf-8")
    except (edge.ManifestError, ValueError):
        got = None
    assert got == case["canonical"], case["description"]


@pytest.mark.parametrize("case", VECTORS["preprocess_cases"], ids=lambda c: c["name"])
def test_preprocess_case(case: dict[str, Any]) -> None:
    import numpy as np

    from edge.runtime import to_pixels

    src = np.frombuffer(base64.b64decode(case["rgb_b64"]), dtype=np.uint8).reshape(case["height"], case["width"], 3)
    got = to_pixels(src, (case["out_width"], case["out_height"]))
    assert got.tobytes() == base64.b64decode(case["expected_b64"])


@pytest.mark.parametrize("case", VECTORS["quantize_cases"], ids=lambda c: c["name"])
def test_quantize_case(case: dict[str, Any]) -> None:
    import numpy as np

    from edge.runtime import quantize

    got = quantize(np.arange(256, dtype=np.uint8), np.dtype(case["dtype"]), case["scale"], case["zero_point"])
    assert [int(v) for v in got] == case["expected"]
