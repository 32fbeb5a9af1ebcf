"""The README's web-app snippet is the file the TypeScript build type-checks (edge/js/examples/web-app.ts)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_web_app_snippet_is_the_type_checked_example() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("(`edge/js/examples/web-app.ts`", 1)[1].split("```ts\n", 1)[1].split("```", 1)[0]
    assert block == (ROOT / "edge" / "js" / "examples" / "web-app.ts").read_text()
