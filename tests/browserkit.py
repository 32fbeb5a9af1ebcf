"""Debian's Chromium for the browser tests (console, web kiosk), driven by Playwright: never `playwright install`."""

from __future__ import annotations

import os
import shutil
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
