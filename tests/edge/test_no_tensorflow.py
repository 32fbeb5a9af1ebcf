"""`edge` installs and runs where TensorFlow (and the rest of the repo) does not exist."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FORBIDDEN = (
    "tensorflow",
    "keras",
    "apache_beam",
    "airflow",
    "edgeloop",
    "registry_api",
    "pipelines",
    "conversion",
    "tf2onnx",
    "onnx",
)

SCRIPT = """
import importlib.abc, json, sys
FORBIDDEN = {forbidden!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"edge imported {{name}}, which a device does not have")
        return None

sys.meta_path.insert(0, Block())
import numpy as np
import edge, edge.cli
from edge import manifest as mf

clf = edge.load({model!r})
top = clf.classify(np.zeros((20, 20, 3), np.uint8), k=2)
raw = json.loads(open({manifest!r}).read())
keys = {{k: bytes.fromhex(v) for k, v in {keys!r}.items()}}
m = mf.verify(raw, keys)
loaded = sorted(n for n in sys.modules if n.split(".")[0] in FORBIDDEN)
print(json.dumps({{"top": top[0][0], "version": m.version, "forbidden_loaded": loaded}}))
"""


def test_edge_runs_with_the_rest_of_the_repo_blocked(
    tmp_path: Path, onnx_v1: Path, signing_key: object, public_keys: dict[str, object]
) -> None:
    import json

    from cryptography.hazmat.primitives import serialization
    from edge_testkit import signed_manifest

    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(signed_manifest(signing_key, onnx_v1, version=1, url="/x")))
    raw_keys = {
        k: v.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()  # type: ignore[attr-defined]
        for k, v in public_keys.items()
    }
    code = SCRIPT.format(forbidden=FORBIDDEN, model=str(onnx_v1), manifest=str(manifest), keys=raw_keys)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"top": report["top"], "version": 1, "forbidden_loaded": []}
    print(
        f"\nedge + edge.cli imported, ran an inference and verified a manifest with {len(FORBIDDEN)} packages blocked"
    )


@pytest.mark.slow
def test_edge_extra_installs_into_a_fresh_venv_without_tensorflow(tmp_path: Path, onnx_v1: Path) -> None:
    """A real venv with only the edge extra's locked packages (uv export of the lock, no TF)."""
    import shutil

    # `uv run` (how tasks.py runs the suite) names itself in $UV, even when it is not on PATH.
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("no uv: run the suite with `python3 tasks.py test`, which installs it")
    repo = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    reqs = tmp_path / "edge-requirements.txt"
    export = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--extra", "edge", "--no-hashes", "--no-emit-project", "-o", str(reqs)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert export.returncode == 0, export.stderr
    assert "tensorflow" not in reqs.read_text()
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    install = subprocess.run(
        [uv, "pip", "install", "-q", "-p", str(py), "-r", str(reqs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0 and ("network" in install.stderr.lower() or "connect" in install.stderr.lower()):
        pytest.skip(f"package index unreachable: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr
    # Only edge/ is put on the path: not the repo root, so nothing else of the repo is importable.
    site = tmp_path / "site"
    shutil.copytree(repo / "edge", site / "edge")
    code = textwrap.dedent(f"""
        import importlib.util, numpy as np, edge
        assert importlib.util.find_spec("tensorflow") is None and importlib.util.find_spec("edgeloop") is None
        print(edge.load({str(onnx_v1)!r}).classify(np.zeros((16, 16, 3), np.uint8), k=1)[0][0])
    """)
    run = subprocess.run(
        [str(py), "-c", code], capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(site)}
    )
    assert run.returncode == 0, run.stderr
    print(f"\nfresh venv with the edge extra only: inference ok ({run.stdout.strip()})")
