"""Feeds kept in the database (imported, added by the API) beside the file's; pausing a
feed; the identities of pruned items (retention).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(8), nullable=False, server_default="config")
        )
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(), nullable=True))
    op.create_table(
        "pruned_items",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["feeds.id"],
            name="fk_pruned_items_feed_id_feeds",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feed_id", "key_hash", name="pk_pruned_items"),
    )
    op.create_index("ix_pruned_items_last_seen_at", "pruned_items", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_pruned_items_last_seen_at", table_name="pruned_items")
    op.drop_table("pruned_items")
    # In place, not in a batch: on SQLite a batch copies ``feeds`` and drops the old table,
    # and with foreign keys on that deletes every item and alert (ON DELETE CASCADE).
    for column in ("paused_at", "tags", "source"):
        op.drop_column("feeds", column)
