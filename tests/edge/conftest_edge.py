"""Edge fixtures (shared with tests/sample_app): tiny real model files, a signing key, the fault server, the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import edge_testkit as kit
import faults
import pytest


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edge-models")


@pytest.fixture(scope="session")
def onnx_v1(model_dir: Path) -> Path:
    return kit.onnx_model(model_dir / "v1.onnx", version=1)


@pytest.fixture(scope="session")
def onnx_v2(model_dir: Path) -> Path:
    """v2 appends a product: labels extend v1's."""
    return kit.onnx_model(model_dir / "v2.onnx", version=2, labels=[*kit.LABELS, "cedar-deodorant"])


@pytest.fixture(scope="session")
def onnx_v3(model_dir: Path) -> Path:
    return kit.onnx_model(model_dir / "v3.onnx", version=3, labels=[*kit.LABELS, "cedar-deodorant"])


@pytest.fixture(scope="session")
def onnx_nan(model_dir: Path) -> Path:
    return kit.onnx_model(model_dir / "nan.onnx", version=9, labels=[*kit.LABELS, "cedar-deodorant"], nan=True)


@pytest.fixture(scope="session")
def tflite_fp32(model_dir: Path) -> Path:
    return kit.tflite_model(model_dir / "fp32.tflite", version=1)


@pytest.fixture(scope="session")
def tflite_int8(model_dir: Path) -> Path:
    return kit.tflite_model(model_dir / "int8.tflite", version=1, int8=True)


@pytest.fixture(scope="session")
def signing_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def public_keys(signing_key: Any) -> dict[str, Any]:
    return {"test-key": signing_key.public_key()}


@pytest.fixture()
def fault_server() -> Iterator[faults.FaultServer]:
    yield from faults.serve()


@pytest.fixture()
def registry(tmp_path: Path) -> Iterator[Any]:
    """The real registry app under uvicorn on loopback, with its own workspace (conftest's)."""
    from registry_server import RegistryServer

    from registry_api.core.config import get_registry_settings

    get_registry_settings.cache_clear()
    server = RegistryServer(tmp_path / "workspace").start()
    try:
        yield server
    finally:
        server.stop()
        get_registry_settings.cache_clear()
