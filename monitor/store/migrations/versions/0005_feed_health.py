"""Feed health: each feed's arrivals (the last poll that brought new items, the gaps between
the last such polls) and the health last announced; the notices and their deliveries.

The arrivals are learned from the items already stored, so a database that has run for a
while knows each feed's usual gap at once: every poll stores its new items with the poll's
time as ``first_seen_at``, so the distinct times are the polls that brought items. The
oldest is left out when all are there, as the first poll's backlog is not an arrival.

Revision ID: 0005
Revises: 0004
"""

import itertools
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GAPS_KEPT = 20  # as monitor.store.health keeps them


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.add_column(sa.Column("last_arrival_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("arrival_gaps", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("health", sa.String(16), nullable=False, server_default="ok"))
        batch_op.add_column(sa.Column("health_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("health_url", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("health_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "notices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("feed_name", sa.Text(), nullable=False),
        sa.Column("feed_url", sa.Text(), nullable=False),
        sa.Column("previous_url", sa.Text(), nullable=True),
        sa.Column("recovered_from", sa.String(16), nullable=True),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name="fk_notices_feed_id_feeds", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
    )
    op.create_index("ix_notices_feed_id", "notices", ["feed_id"])
    op.create_table(
        "notice_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notices.id"],
            name="fk_notice_deliveries_notice_id_notices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notice_deliveries"),
        sa.UniqueConstraint("notice_id", "channel", name="uq_notice_deliveries_notice_id_channel"),
    )
    op.create_index("ix_notice_deliveries_due", "notice_deliveries", ["state", "next_attempt_at"])
    _learn_arrivals()


def _learn_arrivals() -> None:
    feeds = sa.table(
        "feeds",
        sa.column("id", sa.Integer),
        sa.column("last_arrival_at", sa.DateTime),
        sa.column("arrival_gaps", sa.JSON),
    )
    items = sa.table(
        "items", sa.column("feed_id", sa.Integer), sa.column("first_seen_at", sa.DateTime)
    )
    bind = op.get_bind()
    for feed_id in bind.execute(sa.select(feeds.c.id)).scalars().all():
        wanted = GAPS_KEPT + 2  # one more arrival than gaps, and the first poll's
        times = (
            bind.execute(
                sa.select(items.c.first_seen_at)
                .where(items.c.feed_id == feed_id)
                .distinct()
                .order_by(items.c.first_seen_at.desc())
                .limit(wanted)
            )
            .scalars()
            .all()
        )
        arrivals = list(reversed(times))[1:] if len(times) < wanted else list(reversed(times))
        if not arrivals:
            continue
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(arrivals)]
        bind.execute(
            sa.update(feeds)
            .where(feeds.c.id == feed_id)
            .values(last_arrival_at=arrivals[-1], arrival_gaps=gaps[-GAPS_KEPT:] or None)
        )


def downgrade() -> None:
    op.drop_index("ix_notice_deliveries_due", table_name="notice_deliveries")
    op.drop_table("notice_deliveries")
    op.drop_index("ix_notices_feed_id", table_name="notices")
    op.drop_table("notices")
    # In place, not in a batch: on SQLite a batch copies the table and drops the old one,
    # and with foreign keys on, dropping ``feeds`` deletes every item, alert and notice
    # (ON DELETE CASCADE). SQLite drops a plain column in place since 3.35.
    for column in (
        "health_version",
        "health_url",
        "health_since",
        "health",
        "arrival_gaps",
        "last_arrival_at",
    ):
        op.drop_column("feeds", column)
