"""`edgeloop serve`, `edgeloop keys create|list|revoke` and `edgeloop registry migrate` (on the database)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

keys_app = typer.Typer(
    help="API keys of the registry (stored hashed; the token is printed once).", no_args_is_help=True
)
registry_app = typer.Typer(help="The registry's database.", no_args_is_help=True)
telemetry_app = typer.Typer(
    help="Telemetry the registry replicas took in (telemetry_sink=inbox) on its way to the warehouse.",
    no_args_is_help=True,
)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: EDGELOOP_REGISTRY_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: EDGELOOP_REGISTRY_PORT or 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default 1; DuckDB telemetry allows only 1).", min=1)
    ] = None,
) -> None:
    """Run the registry API with uvicorn."""
    import uvicorn

    from registry_api.core.config import get_registry_settings
    from registry_api.core.security import KeyRing
    from registry_api.errors import InvalidRequest
    from registry_api.telemetry import ServingClaim

    # Flags travel as settings through the environment so every worker process sees them.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"EDGELOOP_REGISTRY_{name}"] = str(value)
    get_registry_settings.cache_clear()
    settings = get_registry_settings()
    if settings.workers > 1 and settings.warehouse.startswith("duckdb://") and settings.telemetry_sink == "warehouse":
        raise InvalidRequest(
            "a DuckDB warehouse accepts one writing process; use --workers 1, a bigquery:// warehouse or "
            "EDGELOOP_REGISTRY_TELEMETRY_SINK=inbox (the workers append to the database, one loader writes DuckDB)"
        )
    if settings.telemetry_sink == "warehouse":
        # Refused here with its message, not as a traceback from uvicorn's start-up; held until exit.
        ServingClaim.take(settings.warehouse)
    # Refuse an out-of-date schema once, before workers start (each worker checks again).
    _engine().dispose()
    # Create (and log) the signing key once, before workers race to do it.
    ring = KeyRing.for_registry(settings)
    log.info("signing manifests with key %s; serving on http://%s:%d", ring.key_id, settings.host, settings.port)
    uvicorn.run(
        "registry_api.main:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,  # our own JSON access log replaces uvicorn's
        log_level="warning",
    )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who holds it (shown in the audit log).")],
    role: Annotated[str, typer.Option("--role", help="publisher, device, qa (uploads benchmarks) or reader.")],
    rate: Annotated[float | None, typer.Option("--rate", help="Requests/s for this key (default: per role).")] = None,
) -> None:
    """Create an API key and print its token (only this once)."""
    from registry_api import crud
    from registry_api.core.security import Role
    from registry_api.errors import InvalidRequest

    try:
        role_value = Role(role)
    except ValueError:
        raise InvalidRequest(f"unknown role {role!r}; use {', '.join(Role)}") from None
    with _sessions().begin() as session:
        row, minted = crud.create_key(session, name, role_value, rate)
        key_id = row.key_id
    log.info("created %s key %r (id %s)", role_value.value, name, key_id)
    typer.echo(minted.token)


@keys_app.command("list")
def keys_list(
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
) -> None:
    """List API keys (never their tokens)."""
    from edgeloop.render import print_rows
    from registry_api import crud
    from registry_api.models import ApiKeyPublic

    with _sessions()() as session:
        rows = [
            ApiKeyPublic.model_validate(row, from_attributes=True).model_dump(mode="json")
            for row in crud.list_keys(session)
        ]
    print_rows(rows, output_format)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="Key name or id.")]) -> None:
    """Revoke a key (takes effect within keys_cache_ttl_s on running servers)."""
    from registry_api import crud

    with _sessions().begin() as session:
        row = crud.revoke_key(session, name)
        typer.echo(f"revoked {row.name} ({row.key_id})")


@registry_app.command("migrate")
def registry_migrate() -> None:
    """Upgrade the registry database (database_url) to this release's schema; stop every server first."""
    from registry_api import db, schema
    from registry_api.core.config import get_registry_settings

    engine = db.make_engine(get_registry_settings().database)
    try:
        before, after = schema.migrate(engine)
    finally:
        engine.dispose()
    typer.echo(f"registry database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@telemetry_app.command("load")
def telemetry_load(
    warehouse: Annotated[
        str | None, typer.Option(help="Warehouse URL (default: EDGELOOP_REGISTRY_WAREHOUSE_URL or EDGELOOP_WAREHOUSE).")
    ] = None,
) -> None:
    """Move the inbox into the warehouse until it is empty, exactly once per event (safe to rerun after a crash)."""
    from edgeloop import tables
    from edgeloop import warehouse as wh_mod
    from registry_api.core.config import get_registry_settings
    from registry_api.errors import Conflict
    from registry_api.inbox import InboxLoader, pending

    settings = get_registry_settings()
    engine = _engine()
    try:
        with wh_mod.connect(warehouse or settings.warehouse) as wh:
            loader = InboxLoader(
                engine, lambda data: wh.insert_new_ndjson(tables.TELEMETRY_EVENTS, data), settings.telemetry_load_rows
            )
            if not loader.acquire():
                raise Conflict(
                    "another telemetry loader holds the lease (a replica's embedded loader or another "
                    "`edgeloop telemetry load`); it is loading already, or set EDGELOOP_REGISTRY_TELEMETRY_LOADER=off "
                    "on the replicas to load from here"
                )
            try:
                result = loader.load_all()
            finally:
                loader.release()
        left = pending(engine)
    finally:
        engine.dispose()
    typer.echo(f"loaded {result.rows} events ({result.new} new to the warehouse); {left} waiting in the inbox")


def _engine() -> Engine:
    """The configured database, its schema checked (SchemaOutOfDate names `edgeloop registry migrate`)."""
    from registry_api import db
    from registry_api.core.config import get_registry_settings

    engine = db.make_engine(get_registry_settings().database)
    try:
        db.init_db(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _sessions() -> sessionmaker[Session]:
    from registry_api import db

    return db.session_factory(_engine())


def publish(
    package: Annotated[
        str, typer.Argument(help="Package folder from `edgeloop convert` (a path the registry can read, or gs://).")
    ],
    model: Annotated[str | None, typer.Option(help="Model name (default: the card's name).")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Also point this alias (e.g. production, canary) at the version.")
    ] = None,
    rollout: Annotated[int, typer.Option(help="Rollout percent for --alias.", min=0, max=100)] = 100,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
    registry: Annotated[
        str, typer.Option(envvar="EDGELOOP_REGISTRY_URL", help="Registry base URL.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[str, typer.Option(envvar="EDGELOOP_API_KEY", help="A key with the publisher role.")] = "",
) -> None:
    """Publish a model package to a running registry (idempotent) and optionally move an alias to it."""
    from pathlib import Path

    from edgeloop.card import read_card
    from registry_api.client import RegistryClient

    name = model or read_card(package).name
    uri = str(Path(package).resolve()) if "://" not in package else package
    with RegistryClient(registry, api_key) as client:
        published = client.publish(name, uri)
        typer.echo(f"{name} version {published.version} ({'new' if published.created else 'already published'})")
        if alias:
            state = client.set_alias(name, alias, published.version, rollout_percent=rollout, reason=reason)
            typer.echo(f"{alias} -> version {state.version} at {state.rollout_percent} %")


def register(app: typer.Typer) -> None:
    """Add `serve`, `publish`, `keys` and `registry` to the root `edgeloop` command."""
    app.command("serve")(serve)
    app.command("publish")(publish)
    app.add_typer(keys_app, name="keys")
    from registry_api import cli_release  # models, versions, alias set, rollback, audit (over HTTP)

    cli_release.register(app)
    app.add_typer(registry_app, name="registry")
    app.add_typer(telemetry_app, name="telemetry")
