"""aliases.sequence (the signed counter that stops replayed manifests) and benchmarks.key_id (who uploaded).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NEW = (
    ("aliases", sa.Column("sequence", sa.Integer(), nullable=False, server_default="0")),
    ("benchmarks", sa.Column("key_id", sa.String(32), nullable=True)),
)


def upgrade() -> None:
    # The release just before migrations added these columns in place at start-up (and left no
    # alembic_version): such a database is stamped 0001 and may already have either of them.
    have = sa.inspect(op.get_bind())
    for table, column in _NEW:
        if column.name not in {c["name"] for c in have.get_columns(table)}:
            op.add_column(table, column)


def downgrade() -> None:
    for table, column in _NEW:
        op.drop_column(table, column.name)
