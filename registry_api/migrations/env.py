"""Alembic's environment for the registry: always run on a connection `registry_api.schema` hands over."""

from __future__ import annotations

from alembic import context

from registry_api.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    # SQLite alters most of a table only by copying it: future revisions written in batch mode run on both engines.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
