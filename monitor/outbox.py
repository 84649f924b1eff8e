"""The outbox dispatcher: claim due deliveries, send them, record each outcome.

Deliveries are written with their alert and item (``store.add_items``); this module sends
them. It claims due deliveries with a lease (so several instances never send the same one),
turns them into messages (one alert each, or one digest per channel for the deliveries in
digest mode), keeps each channel under its ``max_per_hour`` by folding the excess into the
channel's next digest, sends, and records the outcome with the channel's retry policy.
A receiver that answers 410 Gone disables its channel until the operator enables it.
Feed-health notices (raised by :mod:`monitor.notices`) go out in the same passes, first,
with the same leases, retries and one-at-a-time per channel; being rare and for the
operator, they are never folded into a digest nor counted against ``max_per_hour``.

It does not match, render or speak a protocol: channels do that.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TypeVar

from alerts.base import Channel, Digest, Message, Notice
from alerts.digest import fold_time, rate_window_start
from alerts.errors import DeliveryError
from alerts.registry import ChannelConfig
from alerts.retry import RetryPolicy
from monitor.metrics import Metrics
from monitor.store import ClaimedDelivery, ClaimedNotice, Store
from monitor.types import DeliveryMode, DeliveryState, frozen

log = logging.getLogger("monitor.delivery")
DIGEST_NAMESPACE = uuid.UUID("0d6c3b7e-8f0a-4c55-9a61-5b1f0e4d2c77")
Claimed = TypeVar("Claimed", ClaimedDelivery, ClaimedNotice)


@frozen
class Outgoing:
    """One message to send and the deliveries it settles."""

    channel: str
    message: Message
    delivery_ids: tuple[int, ...]
    attempts: int  # attempts already made (the most among a digest's deliveries)


def digest_id(delivery_ids: Sequence[int]) -> str:
    """Stable for the same set of deliveries, so a retried digest keeps its id."""
    return str(uuid.uuid5(DIGEST_NAMESPACE, ",".join(map(str, sorted(delivery_ids)))))


class Outbox:
    def __init__(
        self,
        *,
        store: Store,
        channels: Mapping[str, Channel],
        configs: Mapping[str, ChannelConfig],
        retry: Mapping[str, RetryPolicy],
        lease: float,
        clock: Callable[[], datetime],
        rng: random.Random,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.configs = configs
        self.retry = retry
        self.lease = lease
        self.clock = clock
        self.rng = rng
        self.metrics = metrics or Metrics()

    async def deliver_due(self, *, batch: int = 500) -> int:
        """Send every delivery due now, batch after batch; returns how many were settled.

        Only deliveries due when the pass starts are taken: a retry scheduled during the
        pass waits for the next one, so one pass never burns through a retry schedule."""
        settled = 0
        started = self.clock()
        while True:
            deadline = time.monotonic() + self.lease / 2  # the leases start after this
            claimed = await self._claim(self.store.claim_due_deliveries, batch, started)
            notices = await self._claim(self.store.claim_due_notices, batch, started)
            if not claimed and not notices:
                return settled
            outgoing = [*map(_notice, notices), *await self._plan(claimed, started)]
            per_channel: dict[str, list[Outgoing]] = {}
            for out in outgoing:
                per_channel.setdefault(out.channel, []).append(out)
            sent = await asyncio.gather(
                *(self._send_in_turn(queue, deadline) for queue in per_channel.values())
            )
            settled += sum(sent)

    async def _claim(
        self, claim: Callable[..., list[Claimed]], batch: int, due_by: datetime
    ) -> list[Claimed]:
        """Lease deliveries of one kind (alerts' or notices') for this instance's channels."""
        channels = list(self.channels)
        lease = partial(claim, self.clock(), self.lease, channels, batch, due_by=due_by)
        return await asyncio.to_thread(lease)

    async def _send_in_turn(self, queue: Sequence[Outgoing], deadline: float) -> int:
        """One message at a time per channel, each outcome recorded before the next send:
        a crash can then leave at most one message per channel delivered but not recorded
        (the only duplicate the outbox allows), and receivers get alerts in order.

        A slow receiver must not outlive the claim: once half the lease is gone, the rest
        is handed back (and claimed afresh, with a new lease) rather than risk another
        instance claiming it while we still send. Returns how many were settled."""
        settled = 0
        for index, out in enumerate(queue):
            if time.monotonic() > deadline:
                await asyncio.to_thread(self._release, queue[index:])
                break
            await self._send(out)
            settled += len(out.delivery_ids)
        return settled

    def _release(self, queue: Sequence[Outgoing]) -> None:
        """Hand deliveries back unsent, alerts' and notices' each to their table."""
        notices = [i for o in queue if isinstance(o.message, Notice) for i in o.delivery_ids]
        alerts = [i for o in queue if not isinstance(o.message, Notice) for i in o.delivery_ids]
        if notices:
            self.store.release_notice_deliveries(notices)
        if alerts:
            self.store.release_deliveries(alerts)

    async def _plan(self, claimed: Sequence[ClaimedDelivery], now: datetime) -> list[Outgoing]:
        by_channel: dict[str, list[ClaimedDelivery]] = {}
        for delivery in claimed:
            by_channel.setdefault(delivery.channel, []).append(delivery)
        outgoing: list[Outgoing] = []
        for channel, deliveries in by_channel.items():
            digest = [d for d in deliveries if d.mode == DeliveryMode.DIGEST]
            single = [d for d in deliveries if d.mode != DeliveryMode.DIGEST]
            single = await self._within_rate(channel, single, now, extra=1 if digest else 0)
            if digest:
                outgoing.append(_digest(channel, digest, now))
            outgoing += [
                Outgoing(
                    channel=channel, message=d.alert, delivery_ids=(d.id,), attempts=d.attempts
                )
                for d in single
            ]
        return outgoing

    async def _within_rate(
        self, channel: str, deliveries: list[ClaimedDelivery], now: datetime, extra: int
    ) -> list[ClaimedDelivery]:
        """The deliveries that fit under ``max_per_hour`` (messages per clock hour); the
        others are folded into the channel's next digest (or, without one, a digest at the
        start of the next hour)."""
        config = self.configs[channel]
        limit = config.max_per_hour
        if limit is None or not deliveries:
            return deliveries
        sent = await asyncio.to_thread(self.store.count_sent_since, channel, rate_window_start(now))
        room = max(0, limit - sent - extra)
        keep, fold = deliveries[:room], deliveries[room:]
        if fold:
            until = fold_time(now, config.digest)
            await asyncio.to_thread(self.store.fold_deliveries, [d.id for d in fold], until)
            log.info(
                "channel=%s rate limit %d/h reached: %d alert(s) folded into the digest at %s",
                channel,
                limit,
                len(fold),
                until.isoformat(),
            )
        return keep

    def _retry_at(self, channel: str, attempts: int, retry_after: float | None) -> datetime | None:
        """When to try again, or None: retries exhausted, the delivery is dead."""
        return self.retry[channel].next_attempt(attempts, self.clock(), retry_after, self.rng)

    async def _send(self, out: Outgoing) -> None:
        channel = self.channels[out.channel]
        started = time.monotonic()
        attempts = out.attempts + 1
        next_attempt: datetime | None = None
        error: str | None = None
        disable = False
        try:
            # Started before half the lease is gone, ended by three quarters: the outcome is
            # written while the claim still holds.
            async with asyncio.timeout(self.lease / 4):
                result = await channel.send(out.message)
            state, error, detail = DeliveryState.SENT, None, result.detail
        except DeliveryError as exc:
            error = detail = exc.message
            disable = exc.disable_channel
            if exc.retryable:
                next_attempt = self._retry_at(out.channel, attempts, exc.retry_after)
        except TimeoutError:
            error = detail = f"no outcome within {self.lease / 4:.0f}s (a quarter of the lease)"
            next_attempt = self._retry_at(out.channel, attempts, None)
        except Exception as exc:  # a channel bug: keep the alert, try again later
            # Named by its type only: an unknown exception's text may carry a credential.
            log.error("channel=%s internal error %s", out.channel, type(exc).__name__)
            log.debug("channel=%s internal error", out.channel, exc_info=exc)
            error = detail = f"internal error ({type(exc).__name__}); the log has the details"
            next_attempt = self._retry_at(out.channel, attempts, None)
        if error is not None:
            state = DeliveryState.FAILED if next_attempt else DeliveryState.DEAD
        record = (
            self.store.record_notice_delivery
            if isinstance(out.message, Notice)
            else self.store.record_delivery
        )
        await asyncio.to_thread(
            record,
            out.delivery_ids,
            state=state,
            now=self.clock(),
            error=error,
            next_attempt_at=next_attempt,
        )
        self.metrics.record_delivery(out.channel, state, len(out.delivery_ids))
        if disable:
            await asyncio.to_thread(self.store.disable_channel, out.channel, detail, self.clock())
            log.error(
                "channel=%s disabled: %s; fix the receiver, then `monitor channels enable %s`",
                out.channel,
                detail,
                out.channel,
            )
        kind = {Digest: "digest", Notice: "notice"}.get(type(out.message), "alert")
        log.info(
            "%s=%s channel=%s state=%s attempts=%d alerts=%d ms=%.0f detail=%r%s",
            kind,
            out.message.id,
            out.channel,
            state,
            attempts,
            len(out.delivery_ids),
            (time.monotonic() - started) * 1000,
            detail,
            f" next_attempt={next_attempt.isoformat()}" if next_attempt else "",
        )


def _notice(claimed: ClaimedNotice) -> Outgoing:
    return Outgoing(
        channel=claimed.channel,
        message=claimed.notice,
        delivery_ids=(claimed.id,),
        attempts=claimed.attempts,
    )


def _digest(channel: str, deliveries: Sequence[ClaimedDelivery], now: datetime) -> Outgoing:
    ids = tuple(d.id for d in deliveries)
    alerts = sorted((d.alert for d in deliveries), key=lambda a: a.created_at, reverse=True)
    return Outgoing(
        channel=channel,
        message=Digest(id=digest_id(ids), channel=channel, alerts=tuple(alerts), created_at=now),
        delivery_ids=ids,
        attempts=max(d.attempts for d in deliveries),
    )
