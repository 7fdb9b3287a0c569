"""The event stream's records: ``Event.to_line`` (the stream's and the trace's fast path) says
exactly what ``Event.to_json`` says; the WebSocket feed counts what it drops; history asks."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
from typing import Any

import cbor2
import pytest

from smpsim.control.events import CACHED_FRAME_BYTES, EventHub, line_of
from smpsim.control.stream import EventFeed, history, messages


def frame(body: Any, *, op: int = 3, group: int = 1, seq: int = 7, cmd: int = 1,
          raw: bytes | None = None) -> bytes:
    payload = cbor2.dumps(body) if raw is None else raw
    return struct.pack(">BBHHBB", op | 1 << 3, 0, len(payload), group, seq, cmd) + payload


FRAMES = [
    frame({"d": "hello"}, op=2, group=0, cmd=0),
    frame({"err": {"group": 1, "rc": 12}}),
    frame({"rc": 8}),
    frame({"off": 0, "data": bytes(range(256)) * 2, "sha": b"\x01" * 32}, op=2),
    frame({"images": [{"slot": 0, "hash": b"\xaa" * 32, "version": "1.0.0"}]}),
    frame(None, raw=b"\xff\xfe not cbor"),
    frame({"r": "ünïcode \"quoted\" \\ and \n newline"}),
    frame({1: 2, "f": 1.5, "n": None, "t": True}),
    b"\x08\x00",  # shorter than a header
    frame({"d": "x" * (CACHED_FRAME_BYTES * 2)}, op=2, group=0, cmd=0),
]


@pytest.mark.parametrize("data", FRAMES, ids=range(len(FRAMES)))
def test_a_smp_line_is_its_json(data: bytes) -> None:
    hub = EventHub(lambda: 12.3456789)
    for peer in ("127.0.0.1:5555", 'a "peer" \\ ünï', ""):
        for _ in range(2):  # the second time from the cache
            event = hub.publish("smp", dir="response", medium="udp", peer=peer, frame=data)
            assert json.loads(event.to_line()) == event.to_json()


@pytest.mark.parametrize("uptime", [0.0, 1e-7, 0.0000005, 0.1 + 0.2, 12.3456785, 86_400.25,
                                    1796294748.951998])
def test_times_are_rounded_to_the_microsecond_as_in_the_json(uptime: float) -> None:
    hub = EventHub(lambda: uptime)
    event = hub.publish("smp", dir="request", medium="udp", peer="", frame=FRAMES[0])
    line = json.loads(event.to_line())
    assert line["uptime_s"] == event.to_json()["uptime_s"] == round(uptime, 6)


def test_other_events_are_lines_too() -> None:
    hub = EventHub(lambda: 0.0)
    for event in (hub.publish("console", index=1, line="*** Booting ***"),
                  hub.publish("flash", sectors={"3": "erase"}, ops=4),
                  hub.publish("smp", dir="request", medium="udp", peer="p", frame=b"",
                              extra=1)):
        assert json.loads(event.to_line()) == event.to_json()


def test_the_feed_counts_what_it_dropped() -> None:
    async def main() -> list[tuple[int, list[int]]]:
        hub = EventHub(lambda: 0.0, keep=4)
        for n in range(3):
            hub.publish("console", index=n, line="before")
        feed = EventFeed(hub)
        taken = []
        for n in range(10):
            hub.publish("console", index=n, line="x")
        dropped, _, batch = await feed.take()
        taken.append((dropped, [e[0] for e in batch]))
        hub.publish("console", index=0, line="y")
        dropped, _, batch = await feed.take()
        taken.append((dropped, [e[0] for e in batch]))
        return taken

    assert asyncio.run(main()) == [(6, [10, 11, 12, 13]), (0, [14])]


def test_a_sleeping_feed_is_woken_by_the_next_event() -> None:
    async def main() -> list[int]:
        hub = EventHub(lambda: 0.0)
        feed = EventFeed(hub)
        take = asyncio.ensure_future(feed.take())
        await asyncio.sleep(0.1)  # asleep: nothing was published
        assert not take.done()
        hub.smp("request", "udp", "p", FRAMES[0])
        hub.smp("response", "udp", "p", FRAMES[0])
        _, _, batch = await asyncio.wait_for(take, 5)
        return [line_of(record) == event.to_line() and record[0]
                for record, event in zip(batch, hub.since(0), strict=True)]

    assert asyncio.run(main()) == [1, 2]


def test_smp_events_from_the_request_path_are_the_events_published() -> None:
    hub = EventHub(lambda: 1.5)
    hub.smp("request", "udp", "127.0.0.1:1", FRAMES[0])
    published = hub.publish("smp", dir="request", medium="udp", peer="127.0.0.1:1",
                            frame=FRAMES[0])
    fast, slow = hub.since(0)
    assert fast.data == slow.data == published.data
    assert (fast.seq, slow.seq) == (1, 2)
    assert json.loads(fast.to_line()) == {**slow.to_json(), "seq": 1, "wall": fast.to_json()[
        "wall"]}


def test_history_and_messages() -> None:
    hub = EventHub(lambda: 0.0, keep=5)
    for n in range(8):
        hub.publish("console", index=n, line=f"line {n}")
    assert [e.seq for e in history(hub, None, 2)[1]] == [7, 8]
    assert history(hub, 1, None)[0] == 2  # seq 2 and 3 are no longer kept
    assert history(hub, None, None) == (0, [])

    async def collect() -> list[str]:
        return [m async for m in messages(3, hub.last(5), after=5)]

    [text] = asyncio.run(collect())
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"kind": "gap", "dropped": 3}
    assert [r["seq"] for r in lines[1:]] == [6, 7, 8]


def test_a_run_without_control_does_not_import_aiohttp() -> None:
    code = ("import sys, smpsim.cli, smpsim.control.service, smpsim.control.ctl; "
            "sys.exit('aiohttp' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
