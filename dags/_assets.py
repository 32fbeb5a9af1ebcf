"""The assets that chain the DAGs: photos landed → `retrain`; a canary published → `release_health`.

Both sides build them from the same settings, so producer and consumer always agree.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Asset

from dags._settings import DagSettings
from edgeloop import storage


def photos_asset(settings: DagSettings) -> Asset:
    """Updated by `new_photos` when the photo folder changed and went quiet."""
    uri = settings.photos
    if storage.is_local(uri):
        uri = Path(storage.local_path(uri)).resolve().as_uri()
    return Asset(name="edgeloop_new_photos", uri=uri, group="edgeloop")


def canary_asset(settings: DagSettings) -> Asset:
    """Updated by `retrain` when it points the `canary` alias at a new version."""
    return Asset(
        name=f"edgeloop_canary_{settings.model_name}",
        uri=f"x-edgeloop://registry/models/{settings.model_name}/aliases/canary",
        group="edgeloop",
    )
