"""Stories: the same news from several feeds folded into one alert (``stories``), each
item's place in its story (``story_members``), the candidate index (``story_keys``), and
the story of each alert with its part in it.

Alerts written before keep no story: they were sent one per item.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sources", sa.Integer(), nullable=False),
        sa.Column("announced", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stories"),
    )
    op.create_index("ix_stories_last_at", "stories", ["last_at"])
    op.create_table(
        "story_members",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.String(36), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name="fk_story_members_item_id_items", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name="fk_story_members_story_id_stories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name="pk_story_members"),
    )
    op.create_index("ix_story_members_story_id_feed_id", "story_members", ["story_id", "feed_id"])
    op.create_table(
        "story_keys",
        sa.Column("key", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["story_members.item_id"],
            name="fk_story_keys_item_id_story_members",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "item_id", name="pk_story_keys"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_story_keys_seen_at", "story_keys", ["seen_at"])
    # In place (ALTER TABLE ADD COLUMN), not in a batch: a batch copies ``alerts`` on
    # SQLite, and dropping the old table would cascade to every delivery.
    op.add_column("alerts", sa.Column("story_id", sa.String(36), nullable=True))
    op.add_column("alerts", sa.Column("story_role", sa.String(8), nullable=True))
    op.add_column("alerts", sa.Column("story_step", sa.Integer(), nullable=True))
    op.create_index("ix_alerts_story_id", "alerts", ["story_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_story_id", table_name="alerts")
    for column in ("story_step", "story_role", "story_id"):
        op.drop_column("alerts", column)
    op.drop_table("story_keys")
    op.drop_table("story_members")
    op.drop_table("stories")
