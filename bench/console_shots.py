"""Screenshots of every console page of a running registry, to look at after a change.

    .venv/bin/python bench/console_shots.py --url http://127.0.0.1:8000 --key elk_… [--out DIR]
    python3 tasks.py console-shots --url … --key …          # the same, through the locked environment

Logs in with the key (a reader key is enough), follows the console's own links from "what runs
where" to every model, its production and canary versions (and its newest), its field health and
the training page, and saves one full-page PNG per page in `--out` (default
bench/results/console-shots). Drives Debian's Chromium through Playwright (no browser download).
Exits 1 if a page answers an error or logs a JavaScript error, naming the page.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("EDGELOOP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/console").lower()).strip("-") or "overview"


def pages(html_of: Any) -> list[str]:
    """Console paths to visit: the overview, then per model its page, versions of note and field health."""
    paths = ["/console/"]
    models = sorted(set(re.findall(r'href="(/console/models/[^"/?#]+)"', html_of("/console/"))))
    for model in models:
        paths.append(model)
        versions = re.findall(rf'href="({re.escape(model)}/versions/\d+)"', html_of(model))
        # The aliases' versions come first on a model page; the newest heads the version table.
        paths += list(dict.fromkeys(versions))[:3]
        paths.append(f"{model}/field")
    paths.append("/console/training")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="The registry, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="An API key that may log in (reader, qa or publisher).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "console-shots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (or set EDGELOOP_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    base = args.url.rstrip("/")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": args.width, "height": args.height})
        page = context.new_page()
        current = {"path": "/console/login"}
        page.on("pageerror", lambda exc: problems.append(f"{current['path']}: {exc}"))
        page.on("console", lambda m: problems.append(f"{current['path']}: {m.text}") if m.type == "error" else None)
        page.goto(f"{base}/console/login")
        page.fill("#key", args.key)
        with page.expect_navigation():
            page.click("button[type=submit]")
        if "/console/login" in page.url:
            sys.exit(f"the console refused the key: {page.locator('.error').inner_text()}")

        def html_of(path: str) -> str:
            return str(context.request.get(base + path).text())

        for path in pages(html_of):
            current["path"] = path
            answer = page.goto(base + path)
            if answer is None or answer.status != 200:
                problems.append(f"{path}: HTTP {answer.status if answer else 'no answer'}")
            page.wait_for_load_state("networkidle")  # charts draw after the scripts load
            shot = args.out / f"{_slug(path)}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"{shot}  ({path})")
        browser.close()
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
