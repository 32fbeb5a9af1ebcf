"""telemetry_inbox: accepted telemetry every replica appends to, until the one loader moves it to the warehouse.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telemetry_inbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_inbox_event"),
    )


def downgrade() -> None:
    op.drop_table("telemetry_inbox")
