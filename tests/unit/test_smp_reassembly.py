"""BLE request reassembly (Zephyr's ``smp_reassembly.c`` as ``smp_bt.c`` uses it): packets from
writes by the header's length, and every way a write is refused."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from smpsim.mcumgr.framing.reassembly import Collected, Reassembler

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)
NETBUF = 2475


def packet(payload: bytes, seq: int = 1) -> bytes:
    """An SMP packet: v2 write header + ``payload``."""
    return struct.pack(">BBHHBB", 0x0A, 0, len(payload), 0, seq, 0) + payload


def feed(r: Reassembler, *writes: bytes) -> list[Collected]:
    return [r.collect(w) for w in writes]


def test_whole_packet_in_one_write() -> None:
    p = packet(b"\xa1ad\x61x")
    assert feed(Reassembler(NETBUF), p) == [Collected(packet=p)]


def test_header_then_payload_in_pieces() -> None:
    r = Reassembler(NETBUF)
    p = packet(bytes(range(40)))
    results = feed(r, p[:8], p[8:20], p[20:])
    assert results == [Collected(), Collected(), Collected(packet=p)]
    assert r.pending == 0


def test_pending_counts_down() -> None:
    r = Reassembler(NETBUF)
    p = packet(bytes(30))
    r.collect(p[:10])
    assert r.pending == 28
    r.collect(p[10:30])
    assert r.pending == 8


def test_first_write_shorter_than_a_header_is_refused() -> None:
    r = Reassembler(NETBUF)
    p = packet(b"\xa0")
    assert feed(r, p[:7]) == [Collected(dropped="first write shorter than the SMP header")]
    assert r.pending == 0
    assert feed(r, p) == [Collected(packet=p)]  # nothing was kept


def test_packet_longer_than_the_netbuf_is_refused() -> None:
    r = Reassembler(NETBUF)
    too_long = packet(bytes(NETBUF - 8 + 1))
    assert feed(r, too_long[:100]) == [Collected(dropped="packet longer than the netbuf")]
    just_fits = packet(bytes(NETBUF - 8))
    writes = [just_fits[i:i + 495] for i in range(0, NETBUF, 495)]
    assert feed(r, *writes)[-1] == Collected(packet=just_fits)


def test_overshoot_drops_the_partial_packet() -> None:
    r = Reassembler(NETBUF)
    p = packet(bytes(20))
    assert feed(r, p[:10], p[10:] + b"\x00") == [
        Collected(), Collected(dropped="write goes past the end of its packet")]
    assert r.pending == 0
    # The next write starts afresh.
    assert feed(r, p) == [Collected(packet=p)]


def test_first_write_longer_than_its_packet_is_refused() -> None:
    """Two packets in one write: Zephyr's -EOVERFLOW on the first fragment."""
    r = Reassembler(NETBUF)
    a, b = packet(b"\xa0", 1), packet(b"\xa0", 2)
    assert feed(r, a + b) == [Collected(dropped="write longer than its packet")]
    assert r.pending == 0


def test_drop_forgets_the_partial_packet() -> None:
    r = Reassembler(NETBUF)
    p = packet(bytes(20))
    r.collect(p[:12])
    r.drop()
    assert r.pending == 0
    assert feed(r, p) == [Collected(packet=p)]


def test_without_reassembly_every_write_is_a_unit() -> None:
    r = Reassembler(NETBUF, reassembly=False)
    p = packet(bytes(20))
    # Handed on as they are: SMP answers a short packet with rc 9 and ignores < 8 bytes.
    assert feed(r, p[:10], p[10:], p + p) == [
        Collected(packet=p[:10]), Collected(packet=p[10:]), Collected(packet=p + p)]
    assert feed(r, bytes(NETBUF + 1)) == [Collected(dropped="longer than the netbuf")]


def test_empty_write_does_nothing() -> None:
    r = Reassembler(NETBUF)
    p = packet(bytes(4))
    r.collect(p[:9])
    assert r.collect(b"") == Collected()
    assert r.pending == 3


@PROPERTY
@given(st.binary(max_size=NETBUF - 8), st.data())
def test_any_split_after_the_header_gives_the_packet_back(payload: bytes,
                                                          data: st.DataObject) -> None:
    p = packet(payload)
    cuts = sorted(data.draw(st.sets(st.integers(9, max(9, len(p) - 1)), max_size=12)))
    cuts = [c for c in cuts if c < len(p)]
    writes = [p[a:b] for a, b in zip([0, *cuts], [*cuts, len(p)], strict=True)]
    results = feed(Reassembler(NETBUF), *writes)
    assert results[-1] == Collected(packet=p)
    assert all(r == Collected() for r in results[:-1])


@PROPERTY
@given(st.lists(st.binary(min_size=1, max_size=600), max_size=20))
def test_any_writes_never_give_more_than_fits(writes: list[bytes]) -> None:
    r = Reassembler(NETBUF)
    for result in feed(r, *writes):
        if result.packet is not None:
            p = result.packet
            assert len(p) <= NETBUF
            assert len(p) == 8 + int.from_bytes(p[2:4], "big")
        assert 0 <= r.pending <= NETBUF
