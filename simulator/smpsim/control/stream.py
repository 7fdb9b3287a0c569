"""The event stream as one client gets it: events batched per send cycle, turned into JSON only
when sent, and a client that falls behind told what it missed.

Nothing is done per event for a client: the hub keeps the last events in a deque, and the
client's sender task (in the loop) reads what was published since its last send, at most once
per :data:`BATCH_S`. A sender with nothing to send sleeps until the hub wakes it (one wake-up,
at the first event after). A client further behind than the hub keeps gets a
``{"kind": "gap", "dropped": n}`` marker in place of the events it lost (the ``seq`` of the
events around it tells which).

A client that shows only the latest exchanges (the dashboard, ``?smp=N``) gets, per send, every
other event and the last N SMP events, after a ``{"kind": "skipped", "smp": n}`` marker that
counts the exchanges left out; a send of exchanges alone waits for :data:`SMP_EVERY_S` after
the last one. Under an echo flood the board reads N events for it four times a second, not the
flood, and the browser draws no more than it can show.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from smpsim.control.events import Event, EventHub, Record, dumps, lines_of, settle

BATCH_S = 0.05
"""One send cycle: events published within it go out together."""
SMP_EVERY_S = 0.25
"""A client that asks for the latest N SMP events gets them at most this often."""
SLICE = 256
"""Events turned into JSON between two looks at the sockets (about 0.1 ms of work: most are
SMP exchanges, whose lines come from a cache; a look costs a system call)."""
CHUNK_BYTES = 256 * 1024
"""A long batch (a history asked for) is cut into messages of about this size: clients cap a
message's size (aiohttp's client at 4 MiB by default)."""


class EventFeed:
    """Where one client is in the hub's events; takes what is due for it, a send cycle at a
    time. ``keep_smp``: only the latest ``keep_smp`` SMP events, every ``smp_every_s``."""

    def __init__(self, hub: EventHub, keep_smp: int | None = None,
                 smp_every_s: float = SMP_EVERY_S) -> None:
        self._hub = hub
        self._keep_smp = keep_smp
        self._smp_every_s = smp_every_s
        self._smp_sent = 0.0
        """Monotonic time of the last send with SMP events (a thinned client)."""
        self.last_seq, self._others = hub.mark()
        """The newest event taken (at first, the newest before the client came)."""
        self._sleeping: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """Make the sender look now (a client asked for history); loop thread only."""
        sleeping = self._sleeping
        if sleeping is not None and not sleeping.done():
            sleeping.set_result(None)

    async def _sleep(self, future: asyncio.Future[None] | None) -> None:
        if future is None:
            return
        self._sleeping = future
        try:
            await future
        finally:
            self._sleeping = None
            self._hub.forget(future)

    async def take(self) -> tuple[int, int, list[Record]]:
        """Wait for events, then one send cycle; (events dropped before them, SMP events left
        out, the events)."""
        await self._sleep(self._hub.waiter(self.last_seq))
        await asyncio.sleep(BATCH_S)
        hub = self._hub
        if self._keep_smp is None:
            newest, dropped, batch = hub.after(self.last_seq)
            self.last_seq = newest
            return dropped, 0, batch
        wait = self._smp_sent + self._smp_every_s - time.monotonic()
        if wait > 0 and hub.mark()[1] == self._others:
            # Only exchanges since the last send: they wait for their period. (An event of
            # another kind goes out at once, with the latest exchanges before it: the stream
            # stays in order.)
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            timer = loop.call_later(wait, settle, future)
            try:
                await self._sleep(future)
            finally:
                timer.cancel()
        self._smp_sent = time.monotonic()
        newest, others, dropped, batch = hub.latest(self.last_seq, self._others, self._keep_smp)
        due = newest - self.last_seq
        skipped = due - (others - self._others) - sum(e[1] == "smp" for e in batch)
        self.last_seq, self._others = newest, others
        return dropped, max(skipped, 0), batch


def history(hub: EventHub, since: int | None,
            last: int | None) -> tuple[int, list[Record] | list[Event]]:
    """What a client asked for first: (events it cannot have any more, the kept events)."""
    if last is not None:
        return 0, hub.last(last)
    if since is None:
        return 0, []
    _, dropped, events = hub.after(since)
    return dropped, events


async def messages(dropped: int, events: list[Record] | list[Event], after: int,
                   skipped: int = 0) -> AsyncIterator[str]:
    """WebSocket text messages for one send: a gap marker first if events were dropped, a
    skipped marker if SMP events were left out, then one JSON line per event with ``seq``
    above ``after``, cut into :data:`CHUNK_BYTES` messages.

    Events are turned into JSON :data:`SLICE` at a time with the loop let go in between: a
    request that comes in meanwhile waits for one slice, not for the whole batch."""
    lines: list[str] = []
    size = 0
    if dropped:
        lines.append(dumps({"kind": "gap", "dropped": dropped}))
    if skipped:
        lines.append(dumps({"kind": "skipped", "smp": skipped}))
    due = events if not events or events[0][0] > after else \
        [event for event in events if event[0] > after]
    for start in range(0, len(due), SLICE):
        if start:
            await asyncio.sleep(0)
        made = lines_of(due[start:start + SLICE])
        lines += made
        size += sum(map(len, made)) + len(made)
        if size >= CHUNK_BYTES:
            yield "\n".join(lines)
            lines, size = [], 0
    if lines:
        yield "\n".join(lines)
