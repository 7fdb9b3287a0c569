"""The board's event stream: one record per thing that happened, in order, numbered, with both
clocks (the board's emulated uptime and the host's wall time).

Publishing must be cheap (an SMP exchange publishes two events on the request path): an event
keeps what it was given, raw bytes included, and is turned into JSON only when somebody reads it
(:meth:`Event.to_json`, :meth:`Event.to_line`). The hub keeps the last ``keep`` events for late
joiners, and is safe to publish into from the thread a paced boot runs in.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
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
CACHE_ENTRIES = 1024
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_SMP_FIELDS = ("dir", "medium", "peer", "frame")
_frames: dict[bytes, str] = {}
"""Frame -> its JSON fields from ``length`` on (the closing brace included)."""
_wheres: dict[tuple[str, str, str], str] = {}
"""(direction, medium, peer) -> their JSON fields."""


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
        frame: bytes = data["frame"]
        tail = _frames.get(frame)
        if tail is None:
            tail = dumps(_smp_json({"frame": frame}))[1:]
            if len(frame) <= CACHED_FRAME_BYTES:
                _remember(_frames, frame, tail)
        where = (data["dir"], data["medium"], data["peer"])
        middle = _wheres.get(where)
        if middle is None:
            middle = (f'"dir":{json.dumps(where[0])},"medium":{json.dumps(where[1])},'
                      f'"peer":{json.dumps(where[2], ensure_ascii=False)},')
            _remember(_wheres, where, middle)
        # %.6f is round(x, 6) written out: the same number once parsed, for a third of the cost.
        return (f'{{"seq":{self.seq},"kind":"smp","uptime_s":{self.uptime_s:.6f},'
                f'"wall":{self.wall:.6f},{middle}{tail}')


Subscriber = Callable[[Event], None]


class EventHub:
    """Numbered events, the last ``keep`` of them, and whoever listens."""

    def __init__(self, uptime: Callable[[], float], keep: int = 10_000) -> None:
        self._uptime = uptime
        self._events: deque[Event] = deque(maxlen=keep)
        self._subscribers: tuple[Subscriber, ...] = ()
        """Replaced, never changed in place: publish reads it without copying."""
        self._lock = threading.Lock()
        self.seq = 0
        """Number of the last event published."""

    def publish(self, kind: str, **data: Any) -> Event:
        """Record an event and hand it to every subscriber (in the publishing thread)."""
        with self._lock:
            self.seq += 1
            event = Event(self.seq, kind, self._uptime(), time.time(), data)
            self._events.append(event)
            subscribers = self._subscribers
        for subscriber in subscribers:
            subscriber(event)
        return event

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

    def since(self, seq: int) -> list[Event]:
        """The kept events after ``seq``, oldest first."""
        with self._lock:
            return [e for e in self._events if e.seq > seq]

    def last(self, count: int) -> list[Event]:
        """The last ``count`` kept events, oldest first."""
        with self._lock:
            events = list(self._events)
        return events[-count:] if count > 0 else []


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
