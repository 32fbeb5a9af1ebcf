#!/usr/bin/env python3
"""Bootstrap and run edgeloop's two everyday jobs on a machine that has only Python 3.11+.

    python3 tasks.py demo          # the whole loop on embedded defaults, in ./workspace
    python3 tasks.py test          # lint, types and the full test suite (what CI runs)
    python3 tasks.py test --fast   # the quick suite: no TensorFlow, Beam, Airflow or emulator
    python3 tasks.py console-shots --url URL --key KEY   # screenshots of a running console's pages

Both test runs also build and test the TypeScript SDK in edge/js (and build the web kiosk on it)
when node and npm are present.

It installs uv into .tools/ when it is not on PATH, then `uv sync --frozen` from the
committed lock file, so every machine runs the same versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UV_VERSION = "0.13.9"  # the uv that wrote uv.lock; pinned so bootstraps are repeatable
FAST = "not slow and not tf and not beam and not airflow and not gcs and not bigquery and not browser and not postgres"


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    tools = ROOT / ".tools"
    exe = tools / ("Scripts/uv.exe" if os.name == "nt" else "bin/uv")
    if not exe.exists():
        say(f"installing uv {UV_VERSION} into {tools}")
        venv.create(tools, with_pip=True)
        pip = tools / ("Scripts/pip.exe" if os.name == "nt" else "bin/pip")
        subprocess.run([str(pip), "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}"], check=True)
    return str(exe)


def sync(uv_exe: str) -> None:
    say("installing locked dependencies (uv sync --frozen --all-extras)")
    cmd = [uv_exe, "sync", "--frozen", "--all-extras", "--group", "dev"]
    if (3, 11) <= sys.version_info[:2] < (3, 14):
        cmd += ["--python", sys.executable]
    subprocess.run(cmd, check=True, cwd=ROOT)


def run(uv_exe: str, *args: str) -> int:
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.run([uv_exe, "run", "--frozen", "--no-sync", *args], cwd=ROOT, env=env).returncode


def js_sdk() -> int:
    """edge/js: install from its lock file, build, test (every conformance vector); skipped without Node."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        say("SKIPPED the TypeScript SDK (edge/js): node and npm are not on PATH (CI installs Node 20)")
        return 0
    # onnxruntime-node's install script would fetch CUDA files from a host the build machines cannot reach.
    env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"}
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "build"], ["test"]):
        say(f"npm {' '.join(step)} (edge/js)")
        if code := subprocess.run([npm, *step], cwd=ROOT / "edge" / "js", env=env).returncode:
            return code
    say("web kiosk: type-check and bundle (sample_app/web/build.mjs -> sample_app/web/dist)")
    return subprocess.run(["node", str(ROOT / "sample_app" / "web" / "build.mjs")], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on whatever python3 the user has
        sys.exit(f"edgeloop needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not argv or argv[0] not in ("demo", "test", "console-shots"):
        sys.exit(__doc__)
    uv_exe = uv()
    sync(uv_exe)
    if argv[0] == "demo":
        return run(uv_exe, "edgeloop", "demo", *argv[1:])
    if argv[0] == "console-shots":
        return run(uv_exe, "python", "bench/console_shots.py", *argv[1:])
    fast = "--fast" in argv
    rest = [a for a in argv[1:] if a != "--fast"]
    for step in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        say(" ".join(step))
        if code := run(uv_exe, *step):
            return code
    if code := js_sdk():
        return code
    if not fast and shutil.which(os.environ.get("EDGELOOP_CHROMIUM", "chromium")) is None:
        say("no Chromium on this machine: the browser tests (console, web kiosk) will skip (apt-get install chromium)")
    say("pytest" + (" (fast suite)" if fast else " (full suite)"))
    return run(uv_exe, "pytest", *(["-m", FAST] if fast else []), *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
