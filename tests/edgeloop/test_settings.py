from __future__ import annotations

from pathlib import Path

import pytest

from edgeloop.errors import ConfigError
from edgeloop.settings import Settings, get_settings, load


def test_defaults_live_in_the_workspace(tmp_path: Path) -> None:
    settings = get_settings()
    assert settings.workspace == tmp_path / "workspace"
    assert settings.warehouse_url == f"duckdb:///{(tmp_path / 'workspace' / 'warehouse.duckdb').resolve()}"


def test_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGELOOP_WORKSPACE")
    (tmp_path / ".env").write_text("EDGELOOP_WORKSPACE=from-dotenv\nEDGELOOP_LOG_LEVEL=debug\n")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.workspace == Path("from-dotenv")
    assert settings.log_level == "DEBUG"
    monkeypatch.setenv("EDGELOOP_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    assert get_settings().log_level == "WARNING"


def test_bigquery_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELOOP_BQ_PROJECT", "acme-ml")
    monkeypatch.setenv("EDGELOOP_BQ_DATASET", "edgeloop_prod")
    assert Settings().warehouse_url == "bigquery://acme-ml/edgeloop_prod"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EDGELOOP_LOG_LEVEL", "loud", "EDGELOOP_LOG_LEVEL='loud'.*use DEBUG, INFO"),
        ("EDGELOOP_WAREHOUSE", "mysql://x", "EDGELOOP_WAREHOUSE='mysql://x'.*duckdb:///"),
    ],
)
def test_malformed_setting_names_variable_value_and_fix(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load(Settings)


def test_nothing_is_built_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys, edgeloop.settings, edgeloop.storage, edgeloop.warehouse, edgeloop.cli;"
        "assert edgeloop.settings.get_settings.cache_info().currsize == 0;"
        "assert 'duckdb' not in sys.modules and 'google.cloud.storage' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"EDGELOOP_LOG_LEVEL": "nonsense", "PATH": ""})
