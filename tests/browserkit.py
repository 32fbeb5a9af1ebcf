"""Debian's Chromium for the browser tests (console, web kiosk), driven by Playwright: never `playwright install`."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("EDGELOOP_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_or_skip() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (or set EDGELOOP_CHROMIUM)")
    return CHROMIUM


def launch(playwright: Any, *extra: str) -> Any:
    """A headless Chromium from the system's package, with `extra` command-line flags."""
    return playwright.chromium.launch(executable_path=chromium_or_skip(), args=[*ARGS, *extra])


class StaticServer:
    """A page's own origin: a plain static file server for `folder` on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reads the browser's side; a line per request only hides failures
