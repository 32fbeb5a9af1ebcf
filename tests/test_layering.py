"""The import arrows run one way: stages → contracts → kernel, and `edge/` imports nothing else of the repo.

The graph is read from the source (every `import`, also those inside functions), so a lazy import
cannot hide a back edge. Stage-to-stage edges that exist today are listed in KNOWN with the contract
that should own what they share: the test fails on any new edge, and on a listed edge that is gone
(strike it from the list, so it stays the to-do list of the refactor).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "edgeloop"
STAGES = ("pipelines.ingest", "pipelines.train", "pipelines.gate", "conversion", "registry_api")
ORCHESTRATORS = ("dags",)  # they wire stages together: they may import any of them
APPS = ("sample_app",)  # built only on an SDK
PACKAGES = (KERNEL, "edge", *STAGES, *ORCHESTRATORS, *APPS)

# (importer, imported): what they share, which belongs in a contract module on the kernel side.
KNOWN: dict[tuple[str, str], str] = {}  # every back edge is gone: keep it so (a new one fails below)


def _package(module: str) -> str | None:
    """The package of PACKAGES that `module` belongs to (longest match), or None for third parties."""
    for name in sorted(PACKAGES, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return None


def _edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
            rel = path.relative_to(ROOT)
            importer = _package(".".join(rel.with_suffix("").parts))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(rel))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    imported = _package(name)
                    if imported and importer and imported != importer:
                        edges.setdefault((importer, imported), []).append(f"{rel}:{node.lineno}")
    return edges


def _allowed(importer: str, imported: str) -> bool:
    if importer == "edge":
        return False  # what a device installs: nothing else of the repo
    if imported in ("edge", KERNEL):
        return importer != KERNEL or imported == "edge"  # the kernel may use the wire contracts, never a stage
    if importer in APPS:
        return False
    return importer in ORCHESTRATORS


def test_no_new_back_edges() -> None:
    new = {edge: where for edge, where in _edges().items() if not _allowed(*edge) and edge not in KNOWN}
    assert not new, "imports against the layering (stages → contracts → kernel; edge/ alone):\n" + "\n".join(
        f"  {a} → {b}: {', '.join(where)}" for (a, b), where in sorted(new.items())
    )


def test_known_back_edges_still_exist() -> None:
    gone = sorted(set(KNOWN) - set(_edges()))
    assert not gone, f"these back edges are gone: strike them from KNOWN in {Path(__file__).name}: {gone}"


def test_edge_and_the_kernel_import_no_stage() -> None:
    bad = {e: w for e, w in _edges().items() if e[0] in ("edge", KERNEL) and not _allowed(*e)}
    assert not bad, bad
