"""The README's three commands, run as written (port, photos and duration substituted) against `edgeloop serve`."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from edge_testkit import LABELS
from registry_server import RegistryServer, free_port

README = Path(__file__).resolve().parents[2] / "sample_app" / "README.md"
BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    block = README.read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()]


@pytest.mark.slow
def test_readme_three_commands(tmp_path: Path, photos: Path, onnx_v1: Path) -> None:
    serve, keys, app = readme_commands()
    assert serve == "edgeloop serve &" and keys.startswith("export EDGELOOP_API_KEY=$(edgeloop keys create")
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "EDGELOOP_WORKSPACE": str(tmp_path / "workspace"),
        "EDGELOOP_REGISTRY_PORT": str(port),
    }
    server = subprocess.Popen(shlex.split(serve.rstrip("& ")), env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "edgeloop serve did not start"
                time.sleep(0.2)
        # Publish a model the way the demo would (through the API, with a publisher key).
        publisher = subprocess.run(
            ["edgeloop", "keys", "create", "--name", "ci", "--role", "publisher"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        ).stdout.strip()
        registry = RegistryServer(tmp_path / "workspace")
        registry.url, registry.tokens = f"http://127.0.0.1:{port}", {"publisher": publisher}
        registry.set_alias(registry.publish({"onnx_fp32": onnx_v1}, "run-1", LABELS))
        app = app.replace("http://127.0.0.1:8000", registry.url).replace("workspace/photos", str(photos))
        app = app.replace("--duration 120", "--duration 6 --interval 0.1")
        script = f"set -e\n{keys}\n{app}\n"
        out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "model shelf-products v1" in out.stdout
        assert re.search(r"\d+ photos from photos", out.stdout)
        assert httpx.get(f"{registry.url}/v1/keys").status_code == 200
        print(f"\nREADME commands ran: {out.stdout.strip().splitlines()[-1]}")
    finally:
        server.terminate()
        server.wait(20)
