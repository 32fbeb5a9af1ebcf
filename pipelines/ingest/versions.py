"""The dataset versions under a root: which exist, which is newest, which name is free.

The `dataset.json` contract itself (what a version holds) is `edgeloop.dataset`.
"""

from __future__ import annotations

from edgeloop import storage
from edgeloop.dataset import DATASET_JSON

from .rules import next_version, parse_version


def version_uri(root: str, version: str) -> str:
    return storage.join(root, version)


def list_versions(root: str) -> list[str]:
    """Dataset versions under `root` that are complete (have a dataset.json), oldest first."""
    found: set[str] = set()
    for obj in storage.list_objects(storage.join(root, "")):
        rel = obj.uri[len(root.rstrip("/")) + 1 :] if obj.uri.startswith(root.rstrip("/")) else obj.uri
        parts = rel.split("/")
        if len(parts) == 2 and parts[1] == DATASET_JSON:
            try:
                parse_version(parts[0])
            except ValueError:
                continue
            found.add(parts[0])
    return sorted(found, key=parse_version)


def taken_versions(root: str) -> set[str]:
    """Every `vNNNN` folder under `root`, complete or not (a failed run's leftovers count as taken)."""
    taken: set[str] = set()
    prefix = root.rstrip("/")
    for obj in storage.list_objects(storage.join(root, "")):
        if not obj.uri.startswith(prefix):
            continue
        head = obj.uri[len(prefix) + 1 :].split("/", 1)[0]
        try:
            parse_version(head)
        except ValueError:
            continue
        taken.add(head)
    return taken


def latest_version(root: str) -> str | None:
    """The newest complete dataset version under `root`, or None."""
    versions = list_versions(root)
    return versions[-1] if versions else None


def free_version(root: str) -> str:
    """The next unused version name under `root`."""
    return next_version(taken_versions(root))


__all__ = ["free_version", "latest_version", "list_versions", "taken_versions", "version_uri"]
