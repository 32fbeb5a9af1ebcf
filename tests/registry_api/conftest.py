"""Registry fixtures: an isolated registry workspace and a real app with keys of every role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry_api.testing import Harness, create_keys


# PostgreSQL runs in the full suite; the fast suite keeps to SQLite so it stays about a minute.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The registry database of this test: the embedded SQLite default, or a fresh database on a real PostgreSQL.

    A test of SQLite itself would narrow it: `@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)`.
    """
    if request.param == "sqlite":
        return ""
    url: str = request.getfixturevalue("postgres_server").create_database()
    monkeypatch.setenv("EDGELOOP_REGISTRY_DATABASE_URL", url)
    return url


@pytest.fixture()
def registry_env(tmp_path: Path, database_url: str) -> Iterator[Path]:
    from registry_api.core.config import get_registry_settings

    get_registry_settings.cache_clear()
    yield tmp_path / "workspace"
    get_registry_settings.cache_clear()


@pytest.fixture()
def harness(registry_env: Path) -> Iterator[Harness]:
    from registry_api import create_app

    tokens = create_keys()
    with TestClient(create_app()) as client:
        yield Harness(client, tokens["publisher"], tokens["device"], tokens["reader"], registry_env, tokens["qa"])
