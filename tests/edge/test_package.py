"""The SDK's top level: every exported name resolves, and its schemas load without the rest."""

from __future__ import annotations

import subprocess
import sys

import edge


def test_every_exported_name_resolves() -> None:
    assert set(edge.__all__) == set(edge._EXPORTS)
    for name in edge.__all__:
        assert getattr(edge, name) is not None, name
    assert edge.health_check.__module__ == "edge._health"


def test_schemas_load_without_http_numpy_or_runtimes() -> None:
    code = (
        "import sys, edge.events, edge.manifest\n"
        "print(sorted(m for m in ('httpx', 'numpy', 'onnxruntime', 'ai_edge_litert') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
