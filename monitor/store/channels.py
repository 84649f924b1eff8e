"""The channels table: a channel's lasting state (disabled by a receiver's 410 Gone until
the operator enables it again) and the deliveries of each channel by state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select

from monitor.store.base import StoreBase, storage_errors
from monitor.store.schema import ChannelRow, DeliveryRow
from monitor.types import frozen


@frozen
class ChannelStatus:
    """One row of ``monitor channels``: lasting state and deliveries by state."""

    name: str
    disabled_at: datetime | None
    disabled_reason: str | None
    deliveries: Mapping[str, int]


class ChannelStore(StoreBase):
    def disable_channel(self, name: str, reason: str, now: datetime) -> None:
        with storage_errors("disable channel"), self._session() as s, s.begin():
            row = s.get(ChannelRow, name) or ChannelRow(name=name)
            row.disabled_at, row.disabled_reason = now, reason
            s.add(row)

    def enable_channel(self, name: str) -> bool:
        """Returns whether the channel was disabled."""
        with storage_errors("enable channel"), self._session() as s, s.begin():
            row = s.get(ChannelRow, name)
            was = row is not None and row.disabled_at is not None
            if row is not None:
                row.disabled_at, row.disabled_reason = None, None
            return was

    def list_channels(self, names: Sequence[str]) -> list[ChannelStatus]:
        counts = select(DeliveryRow.channel, DeliveryRow.state, func.count()).group_by(
            DeliveryRow.channel, DeliveryRow.state
        )
        with storage_errors("list channels"), self._session() as s:
            rows = {r.name: r for r in s.scalars(select(ChannelRow))}
            by_state: dict[str, dict[str, int]] = {}
            for channel, state, n in s.execute(counts):
                by_state.setdefault(channel, {})[state] = n
        return [
            ChannelStatus(
                name=name,
                disabled_at=rows[name].disabled_at if name in rows else None,
                disabled_reason=rows[name].disabled_reason if name in rows else None,
                deliveries=by_state.get(name, {}),
            )
            for name in names
        ]
