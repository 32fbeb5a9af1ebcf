"""The SDK's schemas load without the rest of it (the registry and the DAGs import them)."""

from __future__ import annotations

import subprocess
import sys


def test_schemas_load_without_http_numpy_or_runtimes() -> None:
    code = (
        "import sys, edge.events, edge.manifest\n"
        "print(sorted(m for m in ('httpx', 'numpy', 'onnxruntime', 'ai_edge_litert') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
