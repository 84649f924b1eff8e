"""Poll history: each feed's last polls and last failed polls, in two rings of fixed size
(``poll_history``), numbered by two counters on the feed (polls and failed polls recorded).

A database upgraded from 0005 starts with empty rings and counters at zero: no poll was
kept before.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.add_column(
            sa.Column("poll_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("poll_failures", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "poll_history",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("ring", sa.String(8), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("polled_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("ms", sa.Integer(), nullable=True),
        sa.Column("new_items", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name="fk_poll_history_feed_id_feeds", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("feed_id", "ring", "slot", name="pk_poll_history"),
    )


def downgrade() -> None:
    op.drop_table("poll_history")
    # In place, not in a batch: on SQLite a batch copies ``feeds`` and drops the old table,
    # and with foreign keys on that deletes every item, alert and notice (ON DELETE CASCADE).
    for column in ("poll_failures", "poll_count"):
        op.drop_column("feeds", column)
