"""Alembic migrations: an old database full of history upgrades with nothing lost; models and history never drift."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, Table, inspect, text

from edgeloop.card import CARD_NAME
from edgeloop.cli import main
from registry_api import create_app, db, schema
from registry_api.core.config import get_registry_settings
from registry_api.core.security import hash_token, new_key
from registry_api.errors import SchemaOutOfDate
from registry_api.testing import make_package

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def _engine() -> Engine:
    return db.make_engine(get_registry_settings().database)


def _old_database(made_by: str) -> None:
    """The schema of an older release: at revision 0001, or made before migrations (no alembic_version).

    "in-place" is the release just before migrations: it had added both new columns by hand at start-up.
    """
    engine = _engine()
    with engine.begin() as conn:
        command.upgrade(schema._config(conn), schema.BASELINE)
        if made_by != "revision-0001":
            conn.execute(text("DROP TABLE alembic_version"))
        if made_by == "in-place":
            conn.execute(text("ALTER TABLE aliases ADD COLUMN sequence INTEGER NOT NULL DEFAULT '0'"))
            conn.execute(text("ALTER TABLE benchmarks ADD COLUMN key_id VARCHAR(32)"))
    engine.dispose()


def _fill(cards: dict[int, dict[str, Any]]) -> dict[str, str]:
    """Keys, two versions with variants, two aliases, their audit rows and a benchmark, as the old release wrote them."""
    engine = _engine()
    meta = MetaData()
    tokens = {}
    with engine.begin() as conn:
        tables = {name: Table(name, meta, autoload_with=conn) for name in inspect(conn).get_table_names()}
        keys = []
        for name, role in (("ci", "publisher"), ("phones", "device"), ("old-phones", "device")):
            minted = new_key()
            tokens[name] = minted.token
            revoked = T0 if name == "old-phones" else None
            keys.append(
                {"key_id": minted.key_id, "name": name, "role": role, "token_hash": hash_token(minted.token)}
                | {"rate_per_s": None, "created_at": T0, "revoked_at": revoked}
            )
        conn.execute(tables["api_keys"].insert(), keys)
        for number in (1, 2):
            card = cards[number]
            conn.execute(
                tables["model_versions"].insert(),
                {"id": number, "model": "shelf-products", "number": number, "digest": f"{number:064x}", "card": card}
                | {"source_uri": None, "created_at": T0, "created_by": "ci"},
            )
            conn.execute(
                tables["version_variants"].insert(),
                [
                    {"version_id": number, "variant": v["variant"], "file": v["file"], "sha256": v["sha256"]}
                    | {"size": v["size"], "runtime": v["runtime"], "quantization": v["quantization"]}
                    | {"publishable": True, "reason": ""}
                    for v in card["variants"]
                ],
            )
        aliases = [("production", 2, 1, 100, True), ("canary", 2, None, 10, False)]
        conn.execute(
            tables["aliases"].insert(),
            [
                {"model": "shelf-products", "name": name, "version": version, "previous_version": previous}
                | {"rollout_percent": rollout, "targeting": {"platforms": ["android"]}, "latency_budget_ms": 25.0}
                | {"rollback": False, "updated_at": T0, "updated_by": "ci"}
                for name, version, previous, rollout, _ in aliases
            ],
        )
        audit = [("publish", None, None, 1), ("publish", None, None, 2)]
        audit += [
            ("set_alias", "production", None, 1),
            ("set_alias", "production", 1, 2),
            ("set_alias", "canary", None, 2),
        ]
        conn.execute(
            tables["audit_log"].insert(),
            [
                {"model": "shelf-products", "alias": alias, "action": action, "actor": "ci", "at": T0}
                | {"from_version": from_v, "to_version": to_v, "from_rollout": None, "to_rollout": None}
                | {"reason": "old"}
                for action, alias, from_v, to_v in audit
            ],
        )
        conn.execute(
            tables["benchmarks"].insert(),
            {"benchmark_id": "7b1c0a52-0d7e-4a3b-9a9f-2f0b6f1d6c11", "model": "shelf-products", "version": 2}
            | {"variant": "tflite_int8", "device_class": "pixel-6a", "device_id": "qa-1", "runtime": "litert"}
            | {"runs": 50, "p50_ms": 4.0, "p90_ms": 5.0, "p99_ms": 6.0, "measured_at": T0, "received_at": T0},
        )
    engine.dispose()
    return tokens


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every registry table, in primary-key order, datetimes as UTC."""
    engine = _engine()
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in db.Base.metadata.sorted_tables:
            if not inspect(conn).has_table(table.name):  # added by a later revision than the database's
                continue
            reflected = Table(table.name, MetaData(), autoload_with=conn)
            rows = conn.execute(reflected.select().order_by(*reflected.primary_key.columns)).mappings().all()
            out[table.name] = [{k: _utc(v) for k, v in row.items()} for row in rows]
    engine.dispose()
    return out


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=dt.UTC) if isinstance(value, dt.datetime) and value.tzinfo is None else value


@pytest.mark.parametrize("made_by", ["revision-0001", "before-migrations", "in-place"])
def test_an_old_database_full_of_history_upgrades_with_nothing_lost(
    registry_env: Path, tmp_path: Path, made_by: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cards = {n: json.loads((make_package(tmp_path / f"v{n}", run=f"run-{n}") / CARD_NAME).read_text()) for n in (1, 2)}
    _old_database(made_by)
    tokens = _fill(cards)
    before = _snapshot()

    with pytest.raises(SchemaOutOfDate, match="run `edgeloop registry migrate`"):
        create_app()
    assert main(["registry", "migrate"]) == 0
    assert f"at revision {schema.head()}" in capsys.readouterr().out
    assert main(["registry", "migrate"]) == 0  # at head already: nothing to do

    after = _snapshot()
    for name, rows in before.items():
        assert [{k: row[k] for k in old} for row, old in zip(after[name], rows, strict=True)] == rows, name
    assert all(row["sequence"] == 0 for row in after["aliases"])
    assert all(row["key_id"] is None for row in after["benchmarks"])
    assert after["telemetry_inbox"] == []

    with TestClient(create_app()) as client:
        ci, phones = ({"Authorization": f"Bearer {tokens[k]}"} for k in ("ci", "phones"))
        old_phones = {"Authorization": f"Bearer {tokens['old-phones']}"}
        assert [v["version"] for v in client.get("/v1/models/shelf-products/versions", headers=ci).json()] == [1, 2]
        audit = client.get("/v1/models/shelf-products/audit", headers=ci).json()
        assert [(e["action"], e["to_version"]) for e in audit][::-1][:5] == [
            ("publish", 1),
            ("publish", 2),
            ("set_alias", 1),
            ("set_alias", 2),
            ("set_alias", 2),
        ]
        assert client.get("/v1/models", headers=old_phones).status_code == 401  # revoked stays revoked
        params = {"device_id": "d-1", "platform": "android"}
        served = client.get("/v1/models/shelf-products/manifest", params=params, headers=phones)
        assert served.status_code == 200, served.text
        assert (served.json()["version"], served.json()["sequence"]) == (2, 0)
        rolled = client.post("/v1/models/shelf-products/aliases/production/rollback", json={}, headers=ci)
        assert rolled.status_code == 200, rolled.text
        again = client.get("/v1/models/shelf-products/manifest", params=params, headers=phones).json()
        assert (again["version"], again["sequence"], again["rollback"]) == (1, 1, True)


def test_the_models_and_the_migrations_never_drift(registry_env: Path) -> None:
    engine = _engine()
    db.init_db(engine)  # an empty database is created by running every revision
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert context.get_current_revision() == schema.head()
        assert compare_metadata(context, db.Base.metadata) == []
    engine.dispose()


def test_serve_refuses_an_out_of_date_database_and_names_the_command(registry_env: Path) -> None:
    _old_database("revision-0001")
    done = subprocess.run(
        [sys.executable, "-m", "edgeloop.cli", "serve", "--port", "1"],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=120,  # a guard only: the refusal comes before uvicorn starts
    )
    assert done.returncode == 2, done.stderr
    output = done.stdout + done.stderr
    assert "revision 0001" in output and "edgeloop registry migrate" in output


def test_a_database_migrated_by_a_newer_release_is_refused_not_downgraded(registry_env: Path) -> None:
    engine = _engine()
    db.init_db(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(SchemaOutOfDate, match="'0099', which this release does not know"):
        db.init_db(engine)
    with pytest.raises(SchemaOutOfDate, match="a newer release migrated it"):
        schema.migrate(engine)
    engine.dispose()
