"""The candidate index (``story_keys``) without its foreign key to ``story_members``.

Deleting an item cascaded to its index rows through that key, and no index leads from an
item to its rows (the primary key begins with the key): every item pruned by retention
scanned the whole index, 160 ms per item with 100,000 items in the stories window. The rows
are pruned by age (``monitor.store.stories.prune_story_keys``) and a row whose member is
gone is never a candidate (the lookup joins the members); the check on each inserted row is
saved too.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_story_keys_item_id_story_members"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild()
    else:
        op.drop_constraint(FOREIGN_KEY, "story_keys", type_="foreignkey")


def downgrade() -> None:
    cascade = {"ondelete": "CASCADE"}
    members = "item_id IN (SELECT item_id FROM story_members)"
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(
            sa.ForeignKeyConstraint(
                ["item_id"], ["story_members.item_id"], name=FOREIGN_KEY, **cascade
            ),
            keep=members,
        )
    else:
        op.execute(f"DELETE FROM story_keys WHERE NOT {members}")
        op.create_foreign_key(
            FOREIGN_KEY, "story_keys", "story_members", ["item_id"], ["item_id"], **cascade
        )


def _rebuild(*constraints: sa.Constraint, keep: str = "1 = 1") -> None:
    """SQLite alters no constraint: the table is built again with the rows ``keep``
    selects (a batch would not keep WITHOUT ROWID)."""
    op.create_table(
        "story_keys_new",
        sa.Column("key", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", "item_id", name="pk_story_keys"),
        *constraints,
        sqlite_with_rowid=False,
    )
    columns = "key, item_id, seen_at"
    op.execute(
        f"INSERT INTO story_keys_new ({columns}) SELECT {columns} FROM story_keys WHERE {keep}"
    )
    op.drop_index("ix_story_keys_seen_at", table_name="story_keys")
    op.drop_table("story_keys")
    op.rename_table("story_keys_new", "story_keys")
    op.create_index("ix_story_keys_seen_at", "story_keys", ["seen_at"])
