"""The board's event stream: one record per thing that happened, in order, numbered, with both
clocks (the board's emulated uptime and the host's wall time).

Publishing must be cheap (an SMP exchange publishes two events on the request path): an event
keeps what it was given, raw bytes included, and is turned into JSON only when somebody reads it
(:meth:`Event.to_json`, :meth:`Event.to_line`). The hub keeps the last ``keep`` events for late
joiners, and is safe to publish into from any thread (the pytest plugin's board runs in a
thread of its own, its tests in another).
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, NamedTuple

import cbor2

OPS = {0: "read", 1: "read_rsp", 2: "write", 3: "write_rsp"}
GROUPS = {0: "os", 1: "img", 2: "stat", 3: "settings", 8: "fs", 9: "shell", 10: "enum",
          63: "zbasic"}
BODY_BYTES_SHOWN = 64
"""Byte strings in decoded bodies longer than this are cut (an upload chunk's ``data``)."""
CACHED_FRAME_BYTES = 512
"""SMP frames up to this long keep their decoded JSON for the next identical frame: clients
repeat small requests (polls, echoes, state reads) and get the same answers."""
CACHE_ENTRIES = 4096
"""Lines cached (a few clients' repeated exchanges: each client is its own peer)."""
KEEP = 10_000
"""Events a hub keeps: for late joiners, and for a WebSocket client that falls behind (one
further behind gets a gap marker)."""
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_SMP_FIELDS = ("dir", "medium", "peer", "frame")
_suffixes: dict[tuple[str, str, str, bytes], str] = {}
"""(direction, medium, peer, frame) -> their JSON fields (the closing brace included)."""


def dumps(record: dict[str, Any]) -> str:
    """A record as one line of compact JSON."""
    return _ENCODER.encode(record)


class Event(NamedTuple):
    """One event (a tuple: the cheapest record Python builds, and one is built per SMP request
    and per response)."""

    seq: int
    """1, 2, 3...: a gap means a reader missed events."""
    kind: str
    """``smp``, ``console``, ``mcuboot``, ``swap``, ``image``, ``app``, ``power``, ``fault``,
    ``flash``, ``board``."""
    uptime_s: float
    """The board's emulated clock."""
    wall: float
    """Host time (Unix seconds)."""
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The event as the API and the trace file show it."""
        body = _smp_json(self.data) if self.kind == "smp" else self.data
        return {"seq": self.seq, "kind": self.kind, "uptime_s": round(self.uptime_s, 6),
                "wall": round(self.wall, 6), **body}

    def to_line(self) -> str:
        """``dumps(self.to_json())``, made fast for SMP events: the stream and the trace turn
        every exchange into a line, on the board's own thread."""
        data = self.data
        if self.kind != "smp" or tuple(data) != _SMP_FIELDS:
            return dumps(self.to_json())
        return lines_of([(self.seq, "smp", self.uptime_s, self.wall,
                          (data["dir"], data["medium"], data["peer"], data["frame"]))])[0]


Record = tuple[Any, ...]
"""An event as the hub keeps it: an :class:`Event`, or, for an exchange published with
:meth:`EventHub.smp`, ``(seq, "smp", uptime_s, wall, (dir, medium, peer, frame))`` (a plain
tuple, built for a fraction of an Event's cost and turned into one only when read)."""


def event_of(record: Record) -> Event:
    """The :class:`Event` a kept record stands for."""
    if type(record) is Event:
        return record
    seq, kind, uptime, wall, (direction, medium, peer, frame) = record
    return Event(seq, kind, uptime, wall,
                 {"dir": direction, "medium": medium, "peer": peer, "frame": frame})


def line_of(record: Record) -> str:
    """``event_of(record).to_line()``, without the Event for an exchange."""
    return lines_of([record])[0]


def lines_of(records: Iterable[Record]) -> list[str]:
    """``[line_of(r) for r in records]``, in one loop: the stream's bulk of work under a flood.
    An exchange's line is its numbers and clocks, then the JSON of the rest (where and the
    frame), cached by the record's own ``(dir, medium, peer, frame)`` for small frames."""
    get = _suffixes.get
    lines = []
    for record in records:
        if type(record) is Event:
            lines.append(record.to_line())
            continue
        seq, _, uptime, wall, key = record
        suffix = get(key)
        if suffix is None:
            suffix = _smp_suffix(*key)
            if len(key[3]) <= CACHED_FRAME_BYTES:
                _remember(_suffixes, key, suffix)
        # %.6f is round(x, 6) written out: the same number once parsed, for a third of the cost.
        lines.append(f'{{"seq":{seq},"kind":"smp","uptime_s":{uptime:.6f},"wall":{wall:.6f},'
                     f'{suffix}')
    return lines


def _smp_suffix(direction: str, medium: str, peer: str, frame: bytes) -> str:
    """An exchange's JSON from ``dir`` on (the closing brace included)."""
    return (f'"dir":{json.dumps(direction)},"medium":{json.dumps(medium)},'
            f'"peer":{json.dumps(peer, ensure_ascii=False)},'
            f'{dumps(_smp_json({"frame": frame}))[1:]}')


Subscriber = Callable[[Event], None]


class EventHub:
    """Numbered events, the last ``keep`` of them, and whoever listens.

    Publishing appends to a deque and nothing more unless somebody asked for more: a
    subscriber (the trace file) is called per event, a WebSocket client reads the deque once
    per send cycle (:meth:`after`) and is woken only when it sleeps for want of events
    (:meth:`waiter`). Non-SMP events are kept a second time apart, so that a client that only
    wants the latest exchanges (the dashboard) finds the rest without reading the flood."""

    def __init__(self, uptime: Callable[[], float], keep: int = KEEP) -> None:
        self._uptime = uptime
        self._events: deque[Record] = deque(maxlen=keep)
        self._others: deque[Event] = deque(maxlen=keep)
        """The kept events that are not SMP exchanges."""
        self._subscribers: tuple[Subscriber, ...] = ()
        """Replaced, never changed in place: publish reads it without copying."""
        self._sleepers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()
        self.seq = 0
        """Number of the last event published."""
        self.others = 0
        """How many events that are not SMP exchanges were published."""

    def publish(self, kind: str, **data: Any) -> Event:
        """Record an event and hand it to every subscriber (in the publishing thread)."""
        with self._lock:
            self.seq = seq = self.seq + 1
            event = Event(seq, kind, self._uptime(), time.time(), data)
            self._events.append(event)
            if kind != "smp":
                self._others.append(event)
                self.others += 1
        for subscriber in self._subscribers:
            subscriber(event)
        if self._sleepers:
            self._wake()
        return event

    def smp(self, direction: str, medium: str, peer: str, frame: bytes) -> None:
        """``publish("smp", dir=..., medium=..., peer=..., frame=...)`` for the request path,
        which publishes twice per exchange: the same event, kept as a plain tuple, for a
        fraction of the cost."""
        uptime = self._uptime()
        wall = time.time()
        lock = self._lock
        lock.acquire()  # a with block costs twice as much
        self.seq = seq = self.seq + 1
        record = (seq, "smp", uptime, wall, (direction, medium, peer, frame))
        self._events.append(record)
        lock.release()
        if self._subscribers:
            event = event_of(record)
            for subscriber in self._subscribers:
                subscriber(event)
        if self._sleepers:
            self._wake()

    def _wake(self) -> None:
        with self._lock:
            sleepers, self._sleepers = self._sleepers, []
        for loop, future in sleepers:
            loop.call_soon_threadsafe(settle, future)

    def waiter(self, seq: int) -> asyncio.Future[None] | None:
        """A future done once an event after ``seq`` is published, or None if one already
        was (loop thread; :meth:`forget` it if it is given up)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.seq > seq:
                return None
            future: asyncio.Future[None] = loop.create_future()
            self._sleepers.append((loop, future))
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        """Drop a waiter given up (its client went away)."""
        with self._lock:
            self._sleepers = [s for s in self._sleepers if s[1] is not future]

    def subscribe(self, subscriber: Subscriber) -> int:
        """Hand every event published from now on to ``subscriber``; returns the ``seq`` of the
        last event published before (``subscriber`` gets every one after it)."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)
            return self.seq

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop handing events to ``subscriber``."""
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

    def after(self, seq: int) -> tuple[int, int, list[Record]]:
        """(the newest ``seq``, events after ``seq`` no longer kept, the kept ones), oldest
        first."""
        with self._lock:
            return (self.seq, *_tail(self._events, self.seq - seq))

    def mark(self) -> tuple[int, int]:
        """(the newest ``seq``, how many non-SMP events were published): where a client of
        :meth:`latest` starts."""
        with self._lock:
            return self.seq, self.others

    def latest(self, seq: int, others_seen: int,
               smp: int) -> tuple[int, int, int, list[Record]]:
        """For a client that wants every non-SMP event after ``seq`` (when ``others_seen``
        of them had been published) and the last ``smp`` SMP events only: (the newest
        ``seq``, the non-SMP events published so far, how many of those it wants are no
        longer kept, the events, oldest first). Reads only the events it returns."""
        found: list[Record] = []
        with self._lock:
            newest, others = self.seq, self.others
            missed, kept = _tail(self._others, others - others_seen)
            if smp > 0:
                for event in reversed(self._events):
                    if event[0] <= seq:
                        break
                    if event[1] == "smp":
                        found.append(event)
                        if len(found) >= smp:
                            break
        found.reverse()
        return newest, others, missed, sorted([*kept, *found]) if kept else found

    def since(self, seq: int) -> list[Event]:
        """The kept events after ``seq``, oldest first."""
        return [event_of(record) for record in self.after(seq)[2]]

    def last(self, count: int) -> list[Event]:
        """The last ``count`` kept events, oldest first."""
        with self._lock:
            records = _tail(self._events, count)[1]
        return [event_of(record) for record in records]


def settle(future: asyncio.Future[None]) -> None:
    """Set ``future`` done, unless it already is (woken twice, or cancelled)."""
    if not future.done():
        future.set_result(None)


def _tail(events: deque[Any], count: int) -> tuple[int, list[Any]]:
    """(how many of the last ``count`` are no longer in ``events``, the rest, oldest first)."""
    count = max(count, 0)
    kept = min(count, len(events))
    tail = list(islice(reversed(events), kept))
    tail.reverse()
    return count - kept, tail


def _remember(cache: dict[Any, str], key: Any, value: str) -> None:
    if len(cache) >= CACHE_ENTRIES:
        cache.clear()  # crude, and enough: a cache that fills up holds nothing that repeats
    cache[key] = value


def _smp_json(data: dict[str, Any]) -> dict[str, Any]:
    """An SMP event: the frame's header fields and its decoded CBOR body."""
    frame: bytes = data["frame"]
    out: dict[str, Any] = {k: v for k, v in data.items() if k != "frame"}
    out["length"] = len(frame)
    if len(frame) < 8:
        out["error"] = "shorter than an SMP header"
        return out
    byte0, flags, length, group, seq, cmd = struct.unpack_from(">BBHHBB", frame)
    out.update(version=(byte0 >> 3) & 0x3, op=OPS.get(byte0 & 0x7, byte0 & 0x7), flags=flags,
               group=group, group_name=GROUPS.get(group, str(group)), cmd=cmd, smp_seq=seq)
    try:
        body = cbor2.loads(frame[8:8 + length])
    except Exception:  # the frame as the client sent it: garbage is a fact to report
        out["body_error"] = "not CBOR"
        return out
    out["body"] = _jsonable(body)
    if isinstance(body, dict):
        rc = body.get("rc")
        err = body.get("err")
        if isinstance(rc, int):
            out["rc"] = rc
        elif isinstance(err, dict) and isinstance(err.get("rc"), int):
            out["rc"] = err["rc"]
            out["rc_group"] = err.get("group")
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        shown = value[:BODY_BYTES_SHOWN].hex()
        return {"hex": shown, "len": len(value)} if len(value) > BODY_BYTES_SHOWN \
            else {"hex": shown}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return repr(value)
