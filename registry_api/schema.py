"""The registry's schema under Alembic: created at head when empty, refused when older, migrated on request.

The migrations ship inside the package (`registry_api/migrations`) and run on a connection
we hand to Alembic, so no alembic.ini is needed at run time.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from registry_api.errors import SchemaOutOfDate

BASELINE = "0001"  # the schema releases made before migrations (no alembic_version table)
_MIGRATIONS = Path(__file__).parent / "migrations"
_MARKER_TABLE = "model_versions"  # any table of the baseline: present means "made by a registry"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The revision this release's models describe."""
    revision = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {_MIGRATIONS}")
    return revision


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(r.revision for r in ScriptDirectory(str(_MIGRATIONS)).walk_revisions())


def _refuse_unknown(engine: Engine, current: str) -> None:
    if current not in _known():
        raise SchemaOutOfDate(
            f"the registry database ({engine.url.render_as_string(hide_password=True)}) is at revision {current!r}, "
            f"which this release does not know (its newest is {head()}): a newer release migrated it; run that "
            "release, or restore the backup taken before"
        )


def _lock(connection: Connection) -> None:
    """One schema change at a time: replicas and workers start together on one database.

    SQLite: the engine's BEGIN IMMEDIATE already holds the write lock. PostgreSQL: an advisory
    lock held until this transaction ends.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('edgeloop.schema', 0))"))


def revision_of(connection: Connection) -> str | None:
    """The database's revision; BASELINE for tables made by a release before migrations; None when empty."""
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None and inspect(connection).has_table(_MARKER_TABLE):
        return BASELINE
    return current


def _versioned(connection: Connection) -> bool:
    return inspect(connection).has_table("alembic_version")


def ensure_current(engine: Engine) -> None:
    """Create the schema in an empty database; refuse one that `edgeloop registry migrate` must upgrade first."""
    with engine.begin() as connection:
        _lock(connection)
        current = revision_of(connection)
        if current is None:
            command.upgrade(_config(connection), "head")
            return
        _refuse_unknown(engine, current)
        if current != head() or not _versioned(connection):
            made_by = f"at revision {current}" if _versioned(connection) else "made by a release before migrations"
            raise SchemaOutOfDate(
                f"the registry database ({engine.url.render_as_string(hide_password=True)}) is {made_by}; "
                f"this release needs revision {head()}: run `edgeloop registry migrate` (back it up first)"
            )


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to head (an unversioned one counts as the baseline): (from, to) revisions."""
    with engine.begin() as connection:
        _lock(connection)
        current = revision_of(connection)
        if current is not None:
            _refuse_unknown(engine, current)
        config = _config(connection)
        if current == BASELINE and not _versioned(connection):
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
    return current, head()
