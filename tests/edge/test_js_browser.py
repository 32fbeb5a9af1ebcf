"""The TypeScript SDK in Debian's Chromium: the IndexedDB store's contract, onnxruntime-web, every conformance vector.

edge/js/test/browser/sdk.browser.ts is bundled with esbuild (edge/js's devDependency) into tmp_path,
served with onnxruntime-web's wasm from its own origin, and each of its named checks must hold.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from browserkit import StaticServer, launch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SDK = Path(__file__).resolve().parents[2] / "edge" / "js"
VECTORS = SDK.parents[1] / "tests" / "conformance" / "vectors.json"
ORT_FILES = ("ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")


def test_store_runtime_and_every_conformance_vector_in_chromium(tmp_path: Path) -> None:
    esbuild = SDK / "node_modules" / ".bin" / "esbuild"  # a script or the native binary: run it as it is
    if shutil.which("node") is None or not esbuild.exists():
        pytest.skip("needs node and edge/js's dependencies (cd edge/js && npm ci); tasks.py test installs them")
    site = tmp_path / "site"
    (site / "ort").mkdir(parents=True)
    bundle = [str(esbuild), "test/browser/sdk.browser.ts", "--bundle", "--format=esm", "--platform=browser"]
    done = subprocess.run(
        [*bundle, f"--outfile={site / 'checks.js'}"], cwd=SDK, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    for name in ORT_FILES:
        shutil.copy(SDK / "node_modules" / "onnxruntime-web" / "dist" / name, site / "ort" / name)
    page_html = '<!doctype html><link rel="icon" href="data:,"><script type="module" src="checks.js"></script>'
    (site / "index.html").write_text(page_html)
    shutil.copy(VECTORS, site / "vectors.json")
    server = StaticServer(site)
    errors: list[str] = []
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.origin + "/index.html")
            page.wait_for_function("() => window.browserChecks !== undefined", timeout=60_000)
            checks: list[dict[str, Any]] = page.evaluate("window.browserChecks")
            browser.close()
    finally:
        server.close()
    assert errors == []
    failed = [c for c in checks if not c["ok"]]
    vectors = json.loads(VECTORS.read_text())
    cases = sum(
        len(vectors[k])
        for k in ("manifest_cases", "file_cases", "canonical_cases", "preprocess_cases", "quantize_cases")
    )
    assert len(checks) == 14 + 1 + 2 * cases and failed == [], failed  # the vectors once per signature engine
