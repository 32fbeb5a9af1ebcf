"""Benchmarks and tests share helpers through the packages (e.g. `registry_api.testing`), never through `tests/`.

Read from the source like test_layering.py: no conftest or benchmark edits `sys.path`, no benchmark
imports a module that lives under tests/, and no benchmark script is named like a package of the
repo (`python bench/<name>.py` puts bench/ first on the path, where it would shadow that package).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = sorted((ROOT / "bench").glob("*.py"))
PACKAGES = ("edgeloop", "edge", "pipelines", "conversion", "registry_api", "dags", "sample_app")


def _imports(path: Path) -> list[tuple[str, int]]:
    names: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.module, node.lineno))
    return names


def test_no_conftest_or_benchmark_edits_sys_path() -> None:
    files = [*BENCH, *sorted((ROOT / "tests").rglob("conftest*.py"))]
    edits = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "path" and ast.unparse(node.value) == "sys"
    ]
    assert not edits, f"sys.path edited at {edits}: import helpers from a package (or list them in pytest's pythonpath)"


def test_benchmarks_import_nothing_from_tests_and_every_repo_import_resolves() -> None:
    test_modules = {path.stem for path in (ROOT / "tests").rglob("*.py")}
    from_tests, missing = [], []
    for path in BENCH:
        for name, line in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line} {name}"
            if name.split(".")[0] in test_modules or name.startswith("tests"):
                from_tests.append(where)
            elif name.split(".")[0] in PACKAGES and importlib.util.find_spec(name) is None:
                missing.append(where)
    assert not from_tests, f"benchmarks import from tests/: {from_tests}; move the helper into its package"
    assert not missing, f"benchmark imports that do not resolve: {missing}"


def test_no_benchmark_shadows_a_package() -> None:
    shadowing = [path.name for path in BENCH if path.stem in PACKAGES]
    assert not shadowing, f"{shadowing} would shadow the package of that name when run as a script; rename it"


def test_registry_benchmark_starts() -> None:
    """`python bench/registry.py --help` as its docstring says (imports at module level resolve)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "registry.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "--replicas" in done.stdout, done.stderr
