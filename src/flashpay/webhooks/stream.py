"""The live event feed as Server-Sent Events (the WHATWG HTML standard, §9.2).

Each event is written as ``id: evt_…``, ``event: <type>``, ``data: <the event's JSON>`` and a
blank line; a browser's ``EventSource`` (or any reader) resumes after a dropped connection by
sending the last id as ``Last-Event-ID``, and the stream goes on with the next event in feed
order — the feed's ``seq`` is committed in order, so nothing is skipped. The stream first sends
``retry: 1000`` (reconnect after a second), a comment every ``HEARTBEAT_SECONDS`` so proxies
keep the connection, and ends after ``STREAM_SECONDS_MAX`` (the client reconnects and resumes).

Each open stream looks for new events of its merchant every ``POLL_SECONDS`` (one indexed
query); with the deriver's own poll that keeps commit-to-event under a second.

Credentials are the merchant's API key in a header. ``EventSource`` cannot send headers, so a
page reads the stream with ``fetch`` and a stream reader (see docs/reference/webhooks.md); a
cookie session (the web app's) works unchanged once the authenticator accepts it, since this
route asks only for ``CurrentMerchant``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import sqlalchemy as sa
from anyio import to_thread
from fastapi import Request

from flashpay.platform import Platform
from flashpay.webhooks.feed import check_event_id, events_after, find_event
from flashpay.webhooks.models import webhook_events

POLL_SECONDS = 0.2
HEARTBEAT_SECONDS = 15.0
STREAM_SECONDS_MAX = 300
BATCH_MAX = 100
RETRY_MS = 1000


async def start_position(platform: Platform, merchant_id: int, after: str | None) -> int | None:
    """The ``seq`` a stream starts after: the event ``after``'s, or the merchant's latest when
    ``None``; ``None`` when ``after`` is not one of the merchant's events."""

    def read() -> int | None:
        with platform.engine.connect() as connection:
            if after is None:
                latest = connection.execute(
                    sa.select(sa.func.max(webhook_events.c.seq)).where(
                        webhook_events.c.merchant_id == merchant_id
                    )
                ).scalar()
                return int(latest or 0)
            found = find_event(connection, merchant_id=merchant_id, event_id=check_event_id(after))
            return None if found is None else found.seq

    return await to_thread.run_sync(read)


async def event_stream(
    request: Request,
    platform: Platform,
    merchant_id: int,
    after_seq: int,
    *,
    max_seconds: float = STREAM_SECONDS_MAX,
) -> AsyncIterator[str]:
    """The merchant's events after ``after_seq`` as SSE text, live, until the client leaves or
    ``max_seconds`` pass."""

    def read(seq: int) -> list[tuple[int, str, str, str]]:
        with platform.engine.connect() as connection:
            found = events_after(
                connection, merchant_id=merchant_id, after_seq=seq, limit=BATCH_MAX
            )
        return [(e.seq, e.id, e.type, e.body) for e in found]

    yield f"retry: {RETRY_MS}\n\n"
    seq = after_seq
    started = time.monotonic()
    last_sent = started
    while time.monotonic() - started < min(max_seconds, STREAM_SECONDS_MAX):
        if await request.is_disconnected():
            return
        batch = await to_thread.run_sync(read, seq)
        for n, event_id, event_type, body in batch:
            yield f"id: {event_id}\nevent: {event_type}\ndata: {body}\n\n"
            seq = n
        now = time.monotonic()
        if batch:
            last_sent = now
        elif now - last_sent >= HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = now
        if len(batch) < BATCH_MAX:
            await anyio.sleep(POLL_SECONDS)
