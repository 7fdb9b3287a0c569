"""The dashboard's event stream (``/api/events?smp=N``): only the latest N SMP events, after a
marker that counts the others; exchanges alone are sent at most every ``smp_every_s``, any other
event at once (with the latest exchanges before it)."""

from __future__ import annotations

import asyncio
import json

from smpsim.control.events import EventHub
from smpsim.control.stream import EventFeed, messages

ECHO = bytes([0x0A, 0, 0, 1, 0, 0, 0, 0]) + b"\xa0"  # os echo write, body {}


def _publish(hub: EventHub, kinds: str) -> None:
    for kind in kinds:
        if kind == "s":
            hub.smp("request", "udp", "", ECHO)
        elif kind == "c":
            hub.publish("console", index=1, line="x")
        else:
            hub.publish("flash", ops=1)


def test_only_the_latest_smp_events_are_kept() -> None:
    async def main() -> list[tuple[int, int, list[tuple[int, str]]]]:
        hub = EventHub(lambda: 0.0)
        feed = EventFeed(hub, keep_smp=2, smp_every_s=0.0)
        _publish(hub, "sscssfss")
        dropped, skipped, batch = await feed.take()
        taken = [(dropped, skipped, [(e[0], e[1]) for e in batch])]
        _publish(hub, "s")
        dropped, skipped, batch = await feed.take()
        return [*taken, (dropped, skipped, [(e[0], e[1]) for e in batch])]

    assert asyncio.run(main()) == [
        (0, 4, [(3, "console"), (6, "flash"), (7, "smp"), (8, "smp")]),
        (0, 0, [(9, "smp")])]


def test_smp_events_wait_for_their_period_and_other_events_do_not() -> None:
    async def main() -> list[tuple[int, list[str]]]:
        hub = EventHub(lambda: 0.0)
        feed = EventFeed(hub, keep_smp=1, smp_every_s=3600.0)
        _publish(hub, "ss")
        _, skipped, batch = await feed.take()  # the first period: the latest exchange
        taken = [(skipped, [e[1] for e in batch])]
        _publish(hub, "sssc")
        _, skipped, batch = await feed.take()  # within the period: sent for the console line
        taken.append((skipped, [e[1] for e in batch]))
        _publish(hub, "s")
        waiting = asyncio.ensure_future(feed.take())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # an exchange alone waits for the period
        waiting.cancel()
        return taken

    assert asyncio.run(main()) == [(1, ["smp"]), (2, ["smp", "console"])]


def test_messages_say_how_many_were_left_out() -> None:
    async def collect() -> list[dict[str, object]]:
        hub = EventHub(lambda: 0.0)
        _publish(hub, "sc")
        lines: list[dict[str, object]] = []
        async for text in messages(0, hub.since(0), after=0, skipped=4):
            lines += [json.loads(line) for line in text.split("\n")]
        return lines
    lines = asyncio.run(collect())
    assert lines[0] == {"kind": "skipped", "smp": 4}
    assert [(line["seq"], line["kind"]) for line in lines[1:]] == [(1, "smp"), (2, "console")]


def test_a_gap_counts_only_the_other_events_lost() -> None:
    """Exchanges pushed out of the kept events are left out, not lost; other events pushed
    out are lost, and counted."""
    async def main() -> tuple[int, int, list[tuple[int, str]]]:
        hub = EventHub(lambda: 0.0, keep=3)
        feed = EventFeed(hub, keep_smp=1, smp_every_s=0.0)
        _publish(hub, "cfcf" + "s" * 10)
        dropped, skipped, batch = await feed.take()
        return dropped, skipped, [(e[0], e[1]) for e in batch]

    assert asyncio.run(main()) == (1, 9, [(2, "flash"), (3, "console"), (4, "flash"),
                                          (14, "smp")])
