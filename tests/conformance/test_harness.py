"""The replay harness itself: missing records fail, volatile values are masked and nothing else.

Real recorded frames are used; until the stat and shell groups are implemented, no replayed
record holds a volatile value, so these keep the masking honest meanwhile.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import records
from .compare import compare_response, decode
from .records import Header, load_transcript, split_unit

# stat show smp_svr_stats (v2) and the real answer:
# {"name": "smp_svr_stats", "fields": {"ticks": 17}}
STAT_REQUEST = bytes.fromhex("0800001400024200a1646e616d656d736d705f7376725f7374617473")
STAT_ANSWER = bytes.fromhex("0900002500024200bf646e616d656d736d705f7376725f7374617473666669656c"
                            "6473bf657469636b7311ffff")
# shell exec ["kernel", "uptime"] and the real answer {"o": "\r\nUptime: 19560 ms\r\n", "ret": 0}
UPTIME_REQUEST = bytes.fromhex("0a00001500094b00a1646172677682666b65726e656c66757074696d65")
UPTIME_ANSWER = bytes.fromhex("0b00001e00094b00bf616f740d0a557074696d653a203139353630206d730d0a"
                              "6372657400ff")


def _recorded(frame: bytes) -> dict[str, object]:
    return {"header": Header.parse(frame).fields(), "payload": decode(frame[8:])}


def _with_body(frame: bytes, body: bytes) -> bytes:
    header = Header.parse(frame)
    return Header(header.version, header.op, 0, len(body), header.group, header.seq,
                  header.cmd).pack() + body


def _compare(request: bytes, answer: bytes, actual: bytes) -> list[str]:
    return compare_response(answer, _recorded(answer), actual, split_unit(request)[0])


def test_missing_golden_folder_fails_loudly(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(records, "GOLDEN_DIR", tmp_path / "nowhere")
    with pytest.raises(pytest.fail.Exception, match="golden records not found"):
        load_transcript("native_sim_udp.jsonl")


def test_identical_frame_matches() -> None:
    assert _compare(STAT_REQUEST, STAT_ANSWER, STAT_ANSWER) == []


def test_volatile_ticks_compared_by_type_even_when_its_size_changes() -> None:
    # ticks 300 takes three bytes instead of one: the header length follows it.
    body = STAT_ANSWER[8:].replace(bytes.fromhex("657469636b7311"),
                                   bytes.fromhex("657469636b7319012c"))
    assert _compare(STAT_REQUEST, STAT_ANSWER, _with_body(STAT_ANSWER, body)) == []


@pytest.mark.parametrize(("old", "new"), [
    ("657469636b7311", "657469636b736131"),  # ticks as text
    ("657469636b7311", "657469636b732f"),  # ticks negative
])
def test_volatile_ticks_of_another_type_differ(old: str, new: str) -> None:
    body = STAT_ANSWER[8:].replace(bytes.fromhex(old), bytes.fromhex(new))
    assert _compare(STAT_REQUEST, STAT_ANSWER, _with_body(STAT_ANSWER, body))


def test_encoding_around_a_volatile_value_is_still_compared() -> None:
    # The same values, but the inner map definite-length: decodes equal, bytes differ.
    body = STAT_ANSWER[8:].replace(bytes.fromhex("bf657469636b7311ff"),
                                   bytes.fromhex("a1657469636b7311"))
    problems = _compare(STAT_REQUEST, STAT_ANSWER, _with_body(STAT_ANSWER, body))
    assert any("raw bytes differ outside the volatile values" in p for p in problems)


def test_non_volatile_field_next_to_a_volatile_one_is_compared() -> None:
    body = STAT_ANSWER[8:].replace(b"smp_svr_stats", b"smp_svr_stat_")
    assert _compare(STAT_REQUEST, STAT_ANSWER, _with_body(STAT_ANSWER, body))


def _shell_body(output: str, ret: int) -> bytes:
    text = output.encode()
    assert len(text) < 24
    return b"\xbf\x61o" + bytes([0x60 | len(text)]) + text + b"\x63ret" + bytes([ret]) + b"\xff"


def test_uptime_output_is_volatile_but_ret_is_not() -> None:
    assert _shell_body("\r\nUptime: 19560 ms\r\n", 0) == UPTIME_ANSWER[8:]
    changed = _shell_body("\r\nUptime: 7 ms\r\n", 0)
    assert _compare(UPTIME_REQUEST, UPTIME_ANSWER, _with_body(UPTIME_ANSWER, changed)) == []
    failed = _shell_body("\r\nUptime: 7 ms\r\n", 1)
    assert _compare(UPTIME_REQUEST, UPTIME_ANSWER, _with_body(UPTIME_ANSWER, failed))


def test_shell_output_of_other_commands_is_not_volatile() -> None:
    request = UPTIME_REQUEST.replace(b"uptime", b"uptimf")
    changed = _shell_body("\r\nUptime: 19561 ms\r\n", 0)
    assert _compare(request, UPTIME_ANSWER, _with_body(UPTIME_ANSWER, changed))


@pytest.mark.parametrize("bridge", records.BRIDGES, ids=lambda b: f"{b.file}:{b.before}")
def test_bridges_resolve(bridge: records.Bridge) -> None:
    """Each bridged exchange names a replayed record of its file and one answered twin record of
    the same request shape (group, command, op) in the other build's transcript."""
    transcript = load_transcript(bridge.file)
    (record,) = [r for r in transcript.records if r.case == bridge.before]
    (twin,) = records.bridges_before(record)
    assert twin.file == bridge.twin and twin.case == bridge.case
    assert twin.build != record.build
    (frame,) = twin.frames
    assert (frame.header.group, frame.header.cmd, frame.header.op) == (8, 0, 2)  # fs upload
    assert len(twin.responses) == 1


def test_bridges_only_where_named() -> None:
    """Records without a bridge get none (the bridges are not a blanket fill-in)."""
    bridged = {(b.file, b.before) for b in records.BRIDGES}
    for file in {b.file for b in records.BRIDGES}:
        for record in load_transcript(file).records:
            if (record.file, record.case) not in bridged:
                assert records.bridges_before(record) == []
