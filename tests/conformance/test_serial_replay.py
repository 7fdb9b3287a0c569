"""Replay of the real native_sim serial transcripts against smpsim, through a real PTY.

Every selected record's ``request_wire_hex`` is written to the board's PTY exactly as recorded
(the lines of one record in one write, as the recorder did, except where its note says the lines
went some milliseconds apart), and what comes back is held to ``responses_wire_hex`` byte for
byte, line splits included, before each frame is also decoded (with the ``smp`` package's own
decoder) and compared like a UDP answer (compare.py: header, payload, raw bytes, volatile values
by type). Raw UART records have no framing: their bytes are the frames.

Shape as in test_udp_replay.py: one test per file, one subtest per replayed record, a fresh
device per unit (a whole file, or one ``os.reset.<variant>`` group of the reset file), each on
the built-in profile named after its build, at ``time_scale=0`` (the raw file at a small time
scale, see :data:`RAW_TIME_SCALE`).

Where a record cannot be held to its literal answer, the deviation is documented and asserted:

* sent after the real process had exited on reset (native_sim exits; a board reboots and keeps
  its UART): the board must have rebooted once and answer the echo as a board does, on the same
  open port (:func:`replay_after_exit`);
* a start line without its newline: the real board merged it with the next frame sent, a record
  this subset lacks; a stand-in frame is sent and must be swallowed the same way
  (:data:`SWALLOWED_STAND_IN`);
* a request this subset lacks that a later answer depends on (an upload chunk): the same
  exchange from another build's transcript is sent first and held to its own recorded answer
  (``records.BRIDGES``, :meth:`Replayer.bridge`);
* raw UART ``final.echo``: the recorded silence comes from raw records missing here (the stream
  was out of step); in step, the echo is answered as a board answers it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import re
import select as selectmod
import struct
import termios
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pytest
from smp import packet as smppacket

from smpsim.config import load_profile
from smpsim.pytest_plugin import EmulatedDevice

from .compare import compare_response, decode, echo_answer, volatile_paths
from .records import (
    HEADER_SIZE,
    OS_ECHO,
    OS_GROUP,
    SUMMARY_KEY,
    Header,
    Kind,
    Record,
    bridges_before,
    build_of,
    load_builds,
    load_transcript,
    plan,
    summarize,
)

SERIAL_FILES = (
    "native_sim_serial_bigrx.jsonl",
    "native_sim_serial_bigrx_reset.jsonl",
    "native_sim_serial_buf96.jsonl",
    "native_sim_serial_buf2048.jsonl",
    "native_sim_serial_noparams.jsonl",
    "native_sim_serial_plain.jsonl",
    "native_sim_serial_fs.jsonl",
    "native_sim_serial_raw.jsonl",
    "native_sim_shell.jsonl",
)
"""The native_sim serial transcripts (the QEMU one belongs to the img group's replay)."""

MIN_REPLAYED = {
    "native_sim_serial_bigrx.jsonl": 98,
    "native_sim_serial_bigrx_reset.jsonl": 13,
    "native_sim_serial_buf96.jsonl": 41,
    "native_sim_serial_buf2048.jsonl": 8,
    "native_sim_serial_noparams.jsonl": 3,
    "native_sim_serial_plain.jsonl": 7,
    "native_sim_serial_fs.jsonl": 48,
    "native_sim_serial_raw.jsonl": 19,
    "native_sim_shell.jsonl": 7,
}
"""Floor of replayed records per file with the groups implemented so far. It only rises."""

ANSWER_TIMEOUT_S = 5.0
"""How long to wait for the expected response lines."""
SILENCE_S = 0.15
"""How long nothing may arrive when the real server sent nothing. A late answer is also caught
by the check before the next record and at the end of each unit."""
EXTRA_GRACE_S = 0.02
"""After the expected frames: how long to listen for more."""
REBOOT_TIMEOUT_S = 10.0
RAW_TIME_SCALE = 0.02
"""The raw file runs at this time scale: its board flushes a partial packet after 3 s of
emulated silence (``input_timeout_ms``), which the recorder waited out after the truncated
frame; at 0.02 that is 60 ms of host time (time scale 0 would never let idle time pass)."""
PACED = re.compile(r"(\d+) ms apart")
SWALLOWED_STAND_IN = bytes.fromhex("0a0000080000a900a161646473776c6c")  # echo "swll", seq 0xa9
"""An os echo frame sent after a start line without newline: the seq the recorder's own next
frame had (its record is not in this subset)."""


def wire_lines(record: Record) -> list[bytes]:
    """The bytes the recorder wrote: one item per line (console) or one item (raw)."""
    wire = record.raw.get("request_wire_hex")
    if wire is None:
        return []
    if isinstance(wire, str):
        return [bytes.fromhex(wire)]
    return [bytes.fromhex(w) for w in wire]


def expected_wire(record: Record) -> list[bytes]:
    """The recorded response bytes on the line, one item per response frame."""
    if record.transport == "serial_raw":
        return list(record.responses)
    wire = record.raw.get("responses_wire_hex") or []
    return [bytes.fromhex(w) for w in wire]


class LineClient:
    """The far end of the board's serial line: the PTY opened like a port."""

    def __init__(self, path: str, *, flush: bool = True) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        if flush:
            termios.tcflush(self.fd, termios.TCIFLUSH)
        self.pending = b""

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        os.close(self.fd)

    def write(self, data: bytes) -> None:
        """Write all of ``data`` at once."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                selectmod.select([], [self.fd], [], 1.0)

    def read(self, until: Callable[[bytes], bool], timeout: float) -> bytes:
        """Read into :attr:`pending` until ``until(pending)`` or the timeout; return it."""
        deadline = time.monotonic() + timeout
        while not until(self.pending):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = selectmod.select([self.fd], [], [], remaining)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    self.pending += os.read(self.fd, 65536)
        return self.pending

    def collect(self, wait: float) -> bytes:
        """Everything arriving within ``wait`` seconds (0: what is there), taken out."""
        self.read(lambda _: False, wait)
        data, self.pending = self.pending, b""
        return data


def split_console(data: bytes) -> tuple[list[list[bytes]], bytes, bool]:
    """Console bytes -> (complete frames as their lines, the text around them, whether an
    unfinished frame or line is left). Frames are told apart as clients do: from a marker to
    ``\\n``; the length in the first line says how many lines follow."""
    frames: list[list[bytes]] = []
    text = bytearray()
    current: list[bytes] = []
    need = 0
    got = 0
    pos = 0
    while pos < len(data):
        starts = [i for i in (data.find(b"\x06\x09", pos), data.find(b"\x04\x14", pos))
                  if i >= 0]
        if not starts:
            text += data[pos:]
            break
        start = min(starts)
        text += data[pos:start]
        end = data.find(b"\n", start)
        if end < 0:
            return frames, bytes(text), True
        line = data[start:end + 1]
        pos = end + 1
        try:
            raw = base64.b64decode(line[2:-1], validate=True)
        except ValueError:
            raw = b""
        if line[:2] == b"\x06\x09":
            current, got = [line], len(raw) - 2
            need = struct.unpack(">H", raw[:2])[0] if len(raw) >= 2 else 0
        else:
            current.append(line)
            got += len(raw)
        if current and got >= need:
            frames.append(current)
            current = []
    return frames, bytes(text), bool(current)


def smp_decode(lines: list[bytes]) -> bytes:
    """The frame in ``lines``, decoded by the smp package (an independent decoder)."""
    decoder = smppacket.decode()
    next(decoder)
    for line in lines:
        try:
            decoder.send(line)
        except StopIteration as stop:
            return bytes(stop.value)
    raise AssertionError("smp.packet.decode wanted more lines")


def split_raw(data: bytes) -> tuple[list[bytes], bool]:
    """Raw UART bytes -> (frames by their header length, whether bytes are left over)."""
    frames = []
    pos = 0
    while len(data) - pos >= HEADER_SIZE:
        end = pos + HEADER_SIZE + struct.unpack_from(">H", data, pos + 2)[0]
        if end > len(data):
            break
        frames.append(data[pos:end])
        pos = end
    return frames, pos < len(data)


SGR = re.compile(r"\x1b\[[0-9;]*m")
STAMP = re.compile(r"\[\d\d:\d\d:\d\d\.\d{3},\d{3}\]")
PROMPT = "uart:~$ "


def console_lines(text: str) -> list[str]:
    """Console text as the shell record keeps it: colours gone (the recorder dropped them),
    timestamps masked (uptime differs), split at CRLF, empty lines and a last bare prompt
    dropped."""
    lines = [STAMP.sub("[uptime]", SGR.sub("", line)) for line in text.split("\r\n")]
    lines = [line for line in lines if line]
    if lines and lines[-1] == PROMPT:
        lines.pop()
    return lines


def console_problems(record: Record, text: bytes) -> list[str]:
    """The shell's text around an exchange against the record's ``console_text``."""
    recorded = record.raw.get("console_text")
    if not isinstance(recorded, list):
        return []
    want = console_lines("\r\n".join(recorded))
    got = console_lines(text.decode("utf-8", "replace"))
    if want != got:
        return [f"console text differs:\n  expected {want}\n  got      {got}"]
    return []


def _short(data: bytes, limit: int = 40) -> str:
    text = data.hex()
    return text if len(data) <= limit else f"{data[:limit].hex()}… ({len(data)} bytes)"


class Replayer:
    """Replays records on one board over its PTY."""

    def __init__(self, device: EmulatedDevice, client: LineClient, raw: bool,
                 text_allowed: bool) -> None:
        self.device = device
        self.client = client
        self.raw = raw
        self.text_allowed = text_allowed
        """The shell transport puts its prompt and echo on the line; a plain UART nothing."""

    def _frames(self, data: bytes) -> tuple[list[bytes], list[bytes], bytes, bool]:
        """(frames as wire bytes, the frames decoded, stray text, unfinished)."""
        if self.raw:
            frames, left = split_raw(data)
            return frames, frames, b"", left
        frames_lines, text, left = split_console(data)
        wires = [b"".join(lines) for lines in frames_lines]
        packets = []
        for lines in frames_lines:
            try:
                packets.append(smp_decode(lines))
            except Exception as exc:  # reported by the comparison as a broken frame
                packets.append(f"<undecodable: {exc}>".encode())
        return wires, packets, text, left

    def send(self, record: Record) -> None:
        """Write the record's bytes as the recorder did."""
        lines = wire_lines(record)
        paced = PACED.search(record.raw.get("note", ""))
        if paced and len(lines) > 1:
            for line in lines:
                self.client.write(line)
                time.sleep(int(paced[1]) / 1000)
        elif lines:
            self.client.write(b"".join(lines))

    def exchange(self, record: Record, expected: list[bytes], packets: tuple[bytes, ...],
                 decoded: tuple[dict[str, Any], ...]) -> None:
        """Send ``record`` and hold what comes back to ``expected`` (the bytes on the line per
        frame), ``packets`` (the frames) and ``decoded`` (the recorder's decoding)."""
        problems = []
        stray = self.client.collect(0)
        if stray and not self.text_allowed:
            problems.append(f"bytes on the line before the request: {stray!r}")
        self.send(record)
        if expected:
            def done(data: bytes) -> bool:
                return len(self._frames(data)[0]) >= len(expected)
            self.client.read(done, ANSWER_TIMEOUT_S)
            data = self.client.collect(EXTRA_GRACE_S)
        else:
            data = self.client.collect(SILENCE_S)
        wires, received, text, unfinished = self._frames(data)
        if text and not self.text_allowed:
            problems.append(f"text on the line, where the board prints none: {text!r}")
        if self.text_allowed:
            before, _, _, _ = self._frames(stray) if stray else ([], [], b"", False)
            if before:
                problems.append(f"frames on the line before the request: {before}")
            problems += console_problems(record, self._frames(stray)[2] + text)
        if unfinished:
            problems.append(f"an unfinished frame or line at the end: {_short(data)}")
        if len(wires) != len(expected):
            problems.append(f"{len(wires)} response frame(s), expected {len(expected)}:\n"
                            f"  expected {[_short(w) for w in expected]}\n"
                            f"  got      {[_short(w) for w in wires]}")
        frames = record.frames
        for i, (want, got, packet) in enumerate(zip(expected, wires, received, strict=False)):
            frame = frames[i] if i < len(frames) else None
            want_packet, info = packets[i], decoded[i]
            header = Header.parse(want_packet)
            volatile = volatile_paths(header, frame, decode(want_packet[HEADER_SIZE:]))
            if not volatile and got != want:
                problems.append(f"response {i}: the bytes on the line differ:\n"
                                f"  expected {want!r}\n  got      {got!r}")
            problems += [f"response {i}: {p}"
                         for p in compare_response(want_packet, info, packet, frame)]
        if problems:
            pytest.fail(f"{record.test_id} ({record.file}:{record.line}):\n" + "\n".join(problems),
                        pytrace=False)

    def replay(self, record: Record) -> None:
        """Replay a record and compare with what the real server answered."""
        self.exchange(record, expected_wire(record), record.responses, record.decoded)
        lines = wire_lines(record)
        if not self.raw and lines and not lines[-1].endswith(b"\n"):
            self.swallowed(record)

    def bridge(self, twin: Record) -> None:
        """A request this subset lacks, from another build's transcript (``records.BRIDGES``):
        its frame sent in Zephyr's lines, its recorded answer expected in them."""
        from smpsim.mcumgr.framing.serial import encode_packet
        assert twin.request is not None
        stand_in = dataclasses.replace(twin, raw={**twin.raw, "request_wire_hex":
                                                  encode_packet(twin.request).hex()})
        self.exchange(stand_in, [encode_packet(r) for r in twin.responses], twin.responses,
                      twin.decoded)

    def swallowed(self, record: Record) -> None:
        """After a line left without its newline, the next frame sent is swallowed with it:
        the real board's next record (not in this subset) was; the stand-in must be too."""
        from smpsim.mcumgr.framing.serial import (
            encode_packet,  # the Zephyr-shape lines of a request
        )
        self.client.write(encode_packet(SWALLOWED_STAND_IN))
        late = self.client.collect(SILENCE_S)
        assert not late, (f"{record.test_id}: a frame sent after a start line without newline "
                          f"was answered, but the real board swallowed it: {late!r}")

    def answered_as_board(self, record: Record) -> None:
        """Hold a lone echo to the answer a board in step gives (:func:`echo_answer`)."""
        assert record.request is not None
        frames = record.frames
        if len(frames) != 1 or frames[0].decided_by_header is not None or (
                frames[0].header.group, frames[0].header.cmd) != (OS_GROUP, OS_ECHO):
            pytest.fail(f"{record.test_id}: no stand-in expectation for a non-echo request",
                        pytrace=False)
        answer = echo_answer(record.request)
        info = {"header": Header.parse(answer).fields(), "payload": decode(answer[HEADER_SIZE:])}
        if self.raw:
            wire = answer
        else:
            from smpsim.mcumgr.framing.serial import encode_packet
            wire = encode_packet(answer)
            # The stand-in's own lines must match what the recorder saw for this very answer
            # shape elsewhere: checked by test_echo_lines_match_recorded_lines.
        self.exchange(record, [wire], (answer,), (info,))

    def replay_after_exit(self, record: Record, boots_at_start: int) -> None:
        """native_sim exited on reset and its PTY vanished (EIO); a board reboots, and its UART
        (this very PTY, still open) answers again once it is up."""
        deadline = time.monotonic() + REBOOT_TIMEOUT_S
        state = self.device.state()
        while (state.boot_count <= boots_at_start or not state.online) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
            state = self.device.state()
        assert state.boot_count == boots_at_start + 1 and state.online, (
            f"{record.test_id}: the device should have rebooted once and be answering: "
            f"boot_count {state.boot_count} (was {boots_at_start}), online {state.online}")
        self.answered_as_board(record)


def profile_for(build: str) -> str:
    """The built-in profile of a build (the same name)."""
    return build


@pytest.mark.parametrize("build", sorted({build_of(f, load_builds()) for f in SERIAL_FILES}))
def test_profile_matches_build(build: str) -> None:
    """The built-in profile is configured like the recorded build, its serial line included."""
    info = load_builds()[build]
    fw = load_profile(profile_for(build)).firmware
    assert sorted(fw.groups) == sorted(info["groups"])
    assert (fw.buf_size, fw.buf_count) == (info["buf_size"], info["buf_count"])
    kinds = {"serial": "uart", "serial_raw": "raw", "shell": "shell"}
    assert fw.serial.transport == kinds[info["transport"]]
    if info["line_length_max"] is not None:
        assert fw.serial.rx_buf_size == info["line_length_max"]
    assert fw.serial.baud == 0 and not fw.serial.console, "native_sim: a PTY, console on stdout"


@pytest.mark.parametrize("file", SERIAL_FILES)
def test_selection(file: str, request: pytest.FixtureRequest) -> None:
    """Enough of each file is replayed, so the selection cannot quietly select nothing."""
    transcript = load_transcript(file)
    kinds, line = summarize(transcript, plan(transcript))
    request.config.stash.setdefault(SUMMARY_KEY, {})[file] = line
    assert kinds[Kind.REPLAY] >= MIN_REPLAYED[file], line


def test_echo_lines_match_recorded_lines() -> None:
    """Every recorded lone echo answer is, on the line, exactly the encoded stand-in answer
    :meth:`Replayer.answered_as_board` expects."""
    from smpsim.mcumgr.framing.serial import encode_packet
    checked = 0
    for file in SERIAL_FILES:
        for record in load_transcript(file).records:
            frames = record.frames
            wire = expected_wire(record)
            if len(frames) != 1 or len(wire) != 1 or record.transport == "serial_raw":
                continue
            frame = frames[0]
            try:
                value = decode(frame.payload)
            except ValueError:
                continue
            if (frame.decided_by_header is None and (frame.header.group, frame.header.cmd)
                    == (OS_GROUP, OS_ECHO) and isinstance(value, dict) and value.keys() == {"d"}
                    and isinstance(value["d"], str) and len(value["d"].encode()) < 24):
                assert encode_packet(echo_answer(record.request or b"")) == wire[0], \
                    record.test_id
                checked += 1
    assert checked >= 20


@pytest.mark.parametrize("file", SERIAL_FILES)
def test_replay(file: str, smp_device_factory: Callable[..., EmulatedDevice],
                subtests: pytest.Subtests) -> None:
    """Every selected record of ``file``, in order, through the PTY (see the module docstring)."""
    transcript = load_transcript(file)
    raw = transcript.info["transport"] == "serial_raw"
    scale = RAW_TIME_SCALE if raw else 0.0
    for unit in plan(transcript):
        if not any(True for _ in unit.replayed()):
            continue
        device = smp_device_factory(profile_for(transcript.build), time_scale=scale,
                                    serial=True)
        assert device.serial_path is not None
        boots_at_start = device.state().boot_count
        shell = transcript.info["transport"] == "shell"
        # The shell's prompt is printed at boot: keep it for the first record to see.
        with LineClient(device.serial_path, flush=not shell) as client:
            replayer = Replayer(device, client, raw,
                                text_allowed=transcript.info["transport"] == "shell")
            for record in unit.replayed():
                for twin in bridges_before(record):
                    with subtests.test(msg=f"{record.test_id} <- {twin.test_id}"):
                        replayer.bridge(twin)
                with subtests.test(msg=record.test_id):
                    if record.server_exited and not record.responses:
                        replayer.replay_after_exit(record, boots_at_start)
                    elif raw and record.case == "final.echo" and not record.responses:
                        replayer.answered_as_board(record)
                    else:
                        replayer.replay(record)
                    if "s of silence" in record.raw.get("note", ""):
                        time.sleep(SILENCE_S)  # the recorder waited; so does the input timer
            late = client.collect(SILENCE_S)
            if not replayer.text_allowed:
                assert not late, f"{unit.label}: bytes after the last exchange: {late!r}"
            else:
                frames, _, _ = split_console(late)
                assert not frames, f"{unit.label}: frames after the last exchange: {frames}"
