"""A name means one thing: no two error classes share a name, and docs name the files the code writes.

Read from the source (like test_layering.py), so no stage's heavy dependencies are imported.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgeloop", "edge", "pipelines", "conversion", "registry_api", "dags", "sample_app")


@functools.cache
def _modules() -> dict[Path, ast.Module]:
    return {
        path.relative_to(ROOT): ast.parse(path.read_text(encoding="utf-8"))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "node_modules" not in path.parts
    }


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def test_no_two_error_classes_share_a_name() -> None:
    classes = [
        (node, rel) for rel, tree in _modules().items() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
    ]
    error_names = {"Exception", "BaseException"}
    errors: list[tuple[ast.ClassDef, Path]] = []
    grew = True
    while grew:  # an error class is one whose base is one, transitively (by name: enough inside one repo)
        errors = [(node, rel) for node, rel in classes if any(_base_name(b) in error_names for b in node.bases)]
        grew = len(error_names | {node.name for node, _ in errors}) > len(error_names)
        error_names |= {node.name for node, _ in errors}
    homes: dict[str, set[str]] = {}
    for node, rel in errors:
        homes.setdefault(node.name, set()).add(rel.as_posix())
    shared = {name: sorted(where) for name, where in homes.items() if len(where) > 1}
    assert not shared, f"error classes defined more than once (rename one so each name means one thing): {shared}"


def test_dag_docs_name_the_files_the_stages_write() -> None:
    """Every `*.json` a DAG's docstring names is a file name some module defines as a constant."""
    modules = _modules()
    constants = {
        node.value.value
        for tree in modules.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    named = {
        (rel.as_posix(), name)
        for rel, tree in modules.items()
        if rel.parts[0] == "dags"
        for name in re.findall(r"`([\w.-]+\.json)`", ast.get_docstring(tree) or "")
    }
    assert named, "the DAG docstrings name no files: has the test lost its subject?"
    unknown = sorted((rel, name) for rel, name in named if name not in constants)
    assert not unknown, f"DAG docstrings name files no module writes: {unknown}"
