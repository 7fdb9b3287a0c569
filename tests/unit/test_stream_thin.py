"""The dashboard's event stream (``/api/events?smp=N``): per send cycle only the latest N SMP
events go out, after a marker that counts the others; no other kind of event is left out."""

from __future__ import annotations

import asyncio
import json

from smpsim.control.events import Event
from smpsim.control.stream import messages, thin_smp


def _events(kinds: str) -> list[Event]:
    names = {"s": "smp", "c": "console", "f": "flash"}
    echo = bytes([0x0A, 0, 0, 1, 0, 0, 0, 0]) + b"\xa0"  # os echo write, body {}
    data = {"s": {"dir": "request", "medium": "udp", "peer": "", "frame": echo},
            "c": {"index": 1, "line": "x"}, "f": {}}
    return [Event(seq, names[k], 0.0, 0.0, data[k]) for seq, k in enumerate(kinds, 1)]


def test_only_the_latest_smp_events_are_kept() -> None:
    events = _events("sscssfss")
    skipped, kept = thin_smp(events, 2)
    assert skipped == 4
    assert [(e.seq, e.kind) for e in kept] == [(3, "console"), (6, "flash"), (7, "smp"),
                                               (8, "smp")]
    assert thin_smp(events, 6) == (0, events)


def test_messages_say_how_many_were_left_out() -> None:
    async def collect() -> list[dict[str, object]]:
        lines: list[dict[str, object]] = []
        async for text in messages(0, _events("sscssfss"), after=1, keep_smp=1):
            lines += [json.loads(line) for line in text.split("\n")]
        return lines
    lines = asyncio.run(collect())
    assert lines[0] == {"kind": "skipped", "smp": 4}  # seq 1 was sent before: not counted
    assert [(line["seq"], line["kind"]) for line in lines[1:]] == [
        (3, "console"), (6, "flash"), (8, "smp")]
