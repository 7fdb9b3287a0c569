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
from collections import deque
from collections.abc import AsyncIterator

from smpsim.control.events import Event, EventHub, dumps

BATCH_S = 0.05
"""One send cycle: events published within it go out together."""
MAX_BEHIND = 5000
"""Events kept for a client between two sends; older ones are dropped for a gap marker."""
SLICE = 32
"""Events turned into JSON between two looks at the sockets (about 0.1 ms of work: most are
SMP exchanges, whose lines come from a cache)."""
CHUNK_BYTES = 256 * 1024
"""A long batch (a history asked for) is cut into messages of about this size: clients cap a
message's size (aiohttp's client at 4 MiB by default)."""


class EventFeed:
    """The events one client has yet to be sent (a subscriber of the :class:`EventHub`).

    No lock: a deque's ``append`` and ``popleft`` are atomic, the deque drops its oldest event
    itself when full, and what was dropped is counted from the ``seq`` numbers at each take."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bound: int = MAX_BEHIND) -> None:
        self._loop = loop
        self._pending: deque[Event] = deque(maxlen=bound)
        self._armed = False
        """A wake-up is on its way (at most one per send cycle)."""
        self._wake = asyncio.Event()
        self.last_seq = 0
        """The newest event taken (or, before the first take, the last one before the feed
        subscribed: see :meth:`subscribe`)."""

    def subscribe(self, hub: EventHub) -> None:
        """Start receiving ``hub``'s events."""
        self.last_seq = hub.subscribe(self)

    def __call__(self, event: Event) -> None:
        self._pending.append(event)
        if not self._armed:
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
        self._armed = False  # before the take: an event appended after it wakes us again
        pending = self._pending
        batch = [pending.popleft() for _ in range(len(pending))]
        if not batch:
            return 0, batch
        newest = max(event.seq for event in batch)  # two publishing threads may swap a pair
        dropped = max(0, newest - self.last_seq - len(batch))
        self.last_seq = newest
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


def thin_smp(events: list[Event], keep: int) -> tuple[int, list[Event]]:
    """The batch with only its last ``keep`` SMP events (every other kind kept); (SMP events
    left out, the events). For a client that shows the latest exchanges (the dashboard): under
    an echo flood it costs the board a fraction of a full listener."""
    smp = [index for index, event in enumerate(events) if event.kind == "smp"]
    if len(smp) <= keep:
        return 0, events
    left_out = set(smp[:len(smp) - keep])
    return len(left_out), [e for index, e in enumerate(events) if index not in left_out]


async def messages(dropped: int, events: list[Event], after: int,
                   keep_smp: int | None = None) -> AsyncIterator[str]:
    """WebSocket text messages for one send: a gap marker first if events were dropped, then one
    JSON line per event with ``seq`` above ``after``, cut into :data:`CHUNK_BYTES` messages.
    With ``keep_smp``, only the last ``keep_smp`` SMP events are sent, after a
    ``{"kind": "skipped", "smp": n}`` marker that counts the others.

    Events are turned into JSON :data:`SLICE` at a time with the loop let go in between: a
    request that comes in meanwhile waits for one slice, not for the whole batch."""
    lines: list[str] = []
    size = 0
    if dropped:
        lines.append(dumps({"kind": "gap", "dropped": dropped}))
    due = [event for event in events if event.seq > after]
    if keep_smp is not None:
        skipped, due = thin_smp(due, keep_smp)
        if skipped:
            lines.append(dumps({"kind": "skipped", "smp": skipped}))
    for start in range(0, len(due), SLICE):
        if start:
            await asyncio.sleep(0)
        made = [event.to_line() for event in due[start:start + SLICE]]
        lines += made
        size += sum(map(len, made)) + len(made)
        if size >= CHUNK_BYTES:
            yield "\n".join(lines)
            lines, size = [], 0
    if lines:
        yield "\n".join(lines)
