"""The event stream as one client gets it: events batched per send cycle, turned into JSON only
when sent, and a bound on what waits for a client that falls behind.

The hub hands each event to :meth:`EventFeed.__call__` in the publishing thread (the event loop's,
or a paced boot's worker thread): that call only queues the event, so the request path pays a
lock and an append. The client's sender task (in the loop) wakes at most once per
:data:`BATCH_S`, takes what is queued and sends it. A client that reads slower than the board
publishes does not make the queue grow without limit: past :data:`MAX_BEHIND` waiting events the
oldest are dropped and the client gets a ``{"kind": "gap", "dropped": n}`` marker in their place
(the ``seq`` of the events around it tells which were lost).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from smpsim.control.events import Event, EventHub

BATCH_S = 0.05
"""One send cycle: events published within it go out together."""
MAX_BEHIND = 5000
"""Events kept for a client between two sends; older ones are dropped for a gap marker."""
CHUNK_BYTES = 256 * 1024
"""A long batch (a history asked for) is cut into messages of about this size: clients cap a
message's size (aiohttp's client at 4 MiB by default)."""


def dumps(record: dict[str, Any]) -> str:
    """One event (or marker) as one line of JSON."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class EventFeed:
    """The events one client has yet to be sent (a subscriber of the :class:`EventHub`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bound: int = MAX_BEHIND) -> None:
        self._loop = loop
        self._bound = bound
        self._pending: deque[Event] = deque()
        self._dropped = 0
        self._lock = threading.Lock()
        self._armed = False
        """A wake-up is on its way (at most one per send cycle)."""
        self._wake = asyncio.Event()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if len(self._pending) >= self._bound:
                self._pending.popleft()
                self._dropped += 1
            self._pending.append(event)
            if self._armed:
                return
            self._armed = True
        self._loop.call_soon_threadsafe(self._wake.set)

    def wake(self) -> None:
        """Make the sender look now (a client asked for history); loop thread only."""
        self._wake.set()

    async def take(self) -> tuple[int, list[Event]]:
        """Wait for events, then one send cycle; (events dropped before them, the events)."""
        await self._wake.wait()
        await asyncio.sleep(BATCH_S)
        self._wake.clear()
        with self._lock:
            self._armed = False
            batch = list(self._pending)
            self._pending.clear()
            dropped, self._dropped = self._dropped, 0
        return dropped, batch


def history(hub: EventHub, since: int | None, last: int | None) -> tuple[int, list[Event]]:
    """What a client asked for first: (events it cannot have any more, the kept events)."""
    if last is not None:
        return 0, hub.last(last)
    if since is None:
        return 0, []
    events = hub.since(since)
    first = events[0].seq if events else hub.seq + 1
    return max(0, first - since - 1), events


def messages(dropped: int, events: list[Event], after: int) -> Iterator[str]:
    """WebSocket text messages for one send: a gap marker first if events were dropped, then one
    JSON line per event with ``seq`` above ``after``, cut into :data:`CHUNK_BYTES` messages."""
    lines: list[str] = []
    size = 0
    if dropped:
        lines.append(dumps({"kind": "gap", "dropped": dropped}))
    for event in events:
        if event.seq <= after:
            continue
        line = dumps(event.to_json())
        lines.append(line)
        size += len(line) + 1
        if size >= CHUNK_BYTES:
            yield "\n".join(lines)
            lines, size = [], 0
    if lines:
        yield "\n".join(lines)
