"""Replay of the real MCUboot serial recovery transcripts against smpsim, through a real PTY.

Each file runs in order against one board of the built-in profile named after its build, from
power-on, at a small time scale (the raw build drops a partial packet after 3 s of emulated
silence). Every record with a request is written to the PTY as the recorder wrote it and what
comes back is held to the recorded answer: the bytes on the line (MCUboot's one-line frames, or
bare packets), then each frame decoded and compared as in the other replays (compare.py). The
board goes through every state of the recording, MCUboot's recovery server and smp_svr in turn:
after each reset the board must come back served by the same program as the recorded one
(``answered_by``, checked with the recorder's own echo probe), and MCUboot's console since the
reset is held to the record's ``console_summary`` (kernel debug noise aside), and its debug
lines during each exchange to the record's ``server_log``.

Where a record cannot be sent as recorded, the deviation is documented and asserted:

* our images stand in for the recorder's (``recovery_images``): upload chunks carry our bytes,
  recorded hashes are swapped for ours in requests and answers, and the lines of a changed
  request are cut where the recorder cut its own;
* an upload's chunks this subset lacks (its summary counts them) are sent in the recorder's
  chunking, each answered with the offset the server returns, until the next recorded chunk's
  offset, which must be reached exactly (:meth:`Replay.catch_up`);
* raw records are independent exchanges: the recorder let the line go quiet between them
  (longer than the 3 s input timeout, as the answered probes after silent garbage show), so the
  replay does too, except for a record continuing the previous one (``.next``);
* ``raw.truncated_then_frame.next`` is answered with the seq of the truncated frame sent before
  it (not in this subset): that frame is sent first (:data:`TRUNCATED_FRAME`);
* a record answered by MCUboot (its ``buf_count`` 1 params answer) while the board runs the
  application here: the boot-mode round trip the recording made in between (held out) is made
  first: the application's ``os reset`` with ``boot_mode`` 1 (:meth:`Replay.to_recovery`).
"""

from __future__ import annotations

import base64
import itertools
import re
import struct
import time
from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from smpsim.config import load_profile
from smpsim.mcumgr.boot_serial.framing import crc16, encode_console
from smpsim.mcumgr.framing.serial import encode_packet
from smpsim.pytest_plugin import EmulatedDevice

from .compare import compare_response, decode
from .records import (
    HEADER_SIZE,
    SUMMARY_KEY,
    Header,
    Record,
    load_builds,
    load_transcript,
    split_unit,
)
from .recovery_images import IMG, UPLOAD, Images, upload_frame
from .test_serial_replay import LineClient, smp_decode, split_console, split_raw, wire_lines

FILES = ("mps2_an385_serial_recovery.jsonl", "mps2_an385_serial_recovery_raw.jsonl",
         "mps2_an385_serial_recovery_buf1024.jsonl")
TIME_SCALE = 0.02
"""Emulated time runs 50 times faster than the host's: 3 s of input timeout is 60 ms."""
QUIET_S = 3.2 * TIME_SCALE
"""Host time for the raw line to go quiet past the 3 s input timeout."""
ANSWER_TIMEOUT_S = 10.0
SILENCE_S = 0.15
REBOOT_TIMEOUT_S = 20.0
NOISE = re.compile(r"took mutex|lock_count|new owner of mutex|^D: stack 0x|scheduler (un)?locked"
                   r"|^D: thread 0x[0-9a-f]+ for \d+ ticks$|^D: TX$|^D: bootutil_img_hash$"
                   r"|^D: bootutil_tlv_iter_")
"""Console lines left out of a boot log comparison: the kernel's debug noise the recorder's
``console_summary`` dropped (and its TLV iterator lines), and the ``TX`` of the reset answer
and of the recorder's probe."""
KERNEL_NOISE = re.compile(r"took mutex|lock_count|new owner of mutex|^D: stack 0x"
                          r"|scheduler (un)?locked|^D: thread 0x[0-9a-f]+ for \d+ ticks$")
"""The kernel's own debug lines, which no MCUboot logic prints."""
STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3},\d{3}\] ")
BOOT_MODE_RESET = bytes.fromhex("0a00000c0000f005a169626f6f745f6d6f646501")
"""smp_svr's os reset with ``{"boot_mode": 1}``, v2, seq 0xf0, as the recorder sent it."""
PROBE = bytes.fromhex("0a0000070000c800a16164637570 3f".replace(" ", ""))
"""The recorder's probe after each reset: os echo "up?", v2, seq 200."""
TRUNCATED_FRAME = bytes.fromhex("0800000200002306")
"""os params, seq 0x23, header length 2, sent without its 2 payload bytes."""


def boot_lines(lines: list[str]) -> list[str]:
    """Console lines as compared: noise dropped, log timestamps masked."""
    return [STAMP.sub("[uptime] ", line) for line in lines if not NOISE.search(line)]


def resplit(record: Record, unit: bytes) -> bytes:
    """``unit`` in console lines cut where the recorder cut its own request's lines."""
    raw = (len(unit) + 2).to_bytes(2, "big") + unit + crc16(unit).to_bytes(2, "big")
    out = b""
    pos = 0
    for line in wire_lines(record):
        size = len(base64.b64decode(line[2:].rstrip(b"\n")))
        out += line[:2] + base64.b64encode(raw[pos:pos + size]) + b"\n"
        pos += size
    assert pos == len(raw), f"{record.test_id}: the recorded lines do not carry the request"
    return out


class Replay:
    """One board, its PTY, the images and the state of the upload being sent."""

    def __init__(self, device: EmulatedDevice, client: LineClient, raw: bool,
                 images: Images) -> None:
        self.device = device
        self.client = client
        self.raw = raw
        self.images = images
        self.reset_at = 0
        """Console length when the last reset was asked for."""
        self.upload: bytes | None = None
        """Our image of the upload in progress (None: not one of ours: filler bytes then)."""
        self.total = 0
        """Its ``len``."""
        self.frame_limit: int | None = None
        """Largest request frame of the recorder's chunks (``max`` chunking)."""
        self.next_off = 0
        self.chunk = 0
        self.seq = 0

    # -- the line ---------------------------------------------------------------------------

    def frames(self, data: bytes) -> tuple[list[bytes], list[bytes], bytes, bool]:
        """(frames as on the line, frames, other bytes, unfinished)."""
        if self.raw:
            frames, left = split_raw(data)
            return frames, frames, b"", left
        lines, text, left = split_console(data)
        return [b"".join(f) for f in lines], [smp_decode(f) for f in lines], text, left

    def exchange(self, label: str, wire: bytes, request: bytes,
                 expected: list[tuple[bytes, dict[str, Any], bytes]]) -> None:
        """Write ``wire``; the answers must be ``expected`` (frame, decoding, line bytes)."""
        stray = self.client.collect(0)
        problems = [f"bytes on the line before the request: {stray!r}"] if stray else []
        self.client.write(wire)
        if expected:
            self.client.read(lambda d: len(self.frames(d)[0]) >= len(expected),
                             ANSWER_TIMEOUT_S)
            data = self.client.collect(0.02)
        else:
            data = self.client.collect(SILENCE_S)
        wires, packets, text, left = self.frames(data)
        if text or left:
            problems.append(f"unexpected bytes on the line: {data!r}")
        if len(packets) != len(expected):
            problems.append(f"{len(packets)} answer(s), expected {len(expected)}: "
                            f"{[p.hex() for p in packets]}")
        frames = split_unit(request)
        for i, ((frame, info, line), got, got_wire) in enumerate(
                zip(expected, packets, wires, strict=False)):
            if got_wire != line:
                problems.append(f"answer {i} on the line: expected {line!r}, got {got_wire!r}")
            problems += [f"answer {i}: {p}" for p in compare_response(
                frame, info, got, frames[i] if i < len(frames) else None)]
        if problems:
            pytest.fail(f"{label}:\n" + "\n".join(problems), pytrace=False)

    def line_bytes(self, frame: bytes) -> bytes:
        """MCUboot's answer as it is on the line."""
        return frame if self.raw else encode_console(frame)

    def zephyr_line_bytes(self, frame: bytes) -> bytes:
        """A client's request, or smp_svr's answer, as it is on the line (Zephyr's lines)."""
        return frame if self.raw else encode_packet(frame)

    # -- records ----------------------------------------------------------------------------

    def replay(self, record: Record) -> None:
        """Send a recorded request (our images and hashes) and hold the answers to it."""
        assert record.request is not None
        unit = self.images.request(record)
        if unit == record.request:
            wire = b"".join(wire_lines(record))
        else:
            wire = unit if self.raw else resplit(record, unit)
        recorded = record.raw.get("responses_wire_hex")
        expected = []
        for i, (frame, info) in enumerate(zip(record.responses, record.decoded, strict=True)):
            ours = self.images.bytes_(frame)
            if self.raw or ours != frame or not isinstance(recorded, list):
                line = self.line_bytes(ours)  # raw: the frame is what is on the line
            else:
                line = bytes.fromhex(recorded[i])  # the line exactly as recorded
            expected.append((ours, {**info, "payload": self.images.json(info.get("payload"))},
                             line))
        if _is_reset(record):
            self.reset_at = len(self.device.console)
            boots = self.device.state().boot_count
        before = len(self.device.console)
        self.exchange(f"{record.test_id} ({record.file}:{record.line})", wire, unit, expected)
        self.server_log(record, before)
        self._follow_upload(record, unit, expected)
        if _is_reset(record):
            self._rebooted(record, boots)

    def server_log(self, record: Record, since: int) -> None:
        """MCUboot's debug lines during the exchange (``server_log``: the recorder kept at most
        30), kernel noise aside."""
        recorded = record.raw.get("server_log")
        if recorded is None:
            return
        want = [line for line in recorded if not KERNEL_NOISE.search(line)]
        got = [line for line in self.device.console[since:] if not KERNEL_NOISE.search(line)]
        if _is_reset(record):  # what the next boot prints is the boot log's
            got = list(itertools.takewhile(lambda line: not line.startswith("*** "), got))
        got = got[:len(recorded)] if len(recorded) >= 30 else got
        assert got == want, f"{record.test_id}: MCUboot's log differs\n  expected {want}\n" \
                            f"  got      {got}"

    def _follow_upload(self, record: Record, unit: bytes,
                       expected: list[tuple[bytes, dict[str, Any], bytes]]) -> None:
        """Keep track of the upload the records are part of (for :meth:`catch_up`)."""
        if len(unit) < HEADER_SIZE:
            return
        header = Header.parse(unit)
        if (header.group, header.cmd) != (IMG, UPLOAD) or len(expected) != 1:
            return
        try:
            args, answer = decode(unit[HEADER_SIZE:]), decode(expected[0][0][HEADER_SIZE:])
        except ValueError:
            return
        if not isinstance(args, dict) or not isinstance(answer, dict) or "off" not in answer:
            return
        if args.get("off") == 0:
            self.upload = self.images.image_of(record)
            self.total = args.get("len", 0)
            self.chunk = 0
        elif isinstance(args.get("data"), bytes) and not self.chunk:
            self.chunk = len(args["data"])  # the recorder's chunk size (its second chunk's)
            # "max" chunks fill the frame: later ones shrink as their offset grows.
            self.frame_limit = len(unit) if self.images.upload_of(record) in \
                self.images.max_chunks else None
        self.next_off = answer["off"]
        self.seq = header.seq

    def catch_up(self, target: int, label: str) -> None:
        """The chunks of our upload that this subset lacks, from where the server is up to
        ``target``, in the recorder's chunking; each must be answered with the offset after
        its whole write blocks (all of it for the last)."""
        assert self.chunk, f"{label}: no upload to continue"
        while self.next_off < target:
            self.seq = (self.seq + 1) & 0xFF
            size = min(self.chunk, self.total - self.next_off)
            data = self.upload[self.next_off:self.next_off + size] if self.upload is not None \
                else bytes([0x5A]) * size  # junk uploads: any bytes do
            request = upload_frame(self.seq, self.next_off, data)
            while self.frame_limit is not None and len(request) > self.frame_limit:
                data = data[:-1]
                request = upload_frame(self.seq, self.next_off, data)
            end = self.next_off + len(data)
            off = end if end == self.total else end - end % 4
            body = b"\xbf\x62rc\x00\x63off" + cbor2.dumps(off) + b"\xff"
            answer = Header(1, 3, 0, len(body), IMG, self.seq, UPLOAD).pack() + body
            wire = self.zephyr_line_bytes(request)
            self.exchange(f"{label} <- chunk at {self.next_off}", wire, request,
                          [(answer, {"header": Header.parse(answer).fields()},
                            self.line_bytes(answer))])
            self.next_off = off
        assert self.next_off == target, f"{label}: the chunks end at {self.next_off}"

    def _rebooted(self, record: Record, boots: int) -> None:
        deadline = time.monotonic() + REBOOT_TIMEOUT_S
        state = self.device.state()
        while (state.boot_count <= boots or not state.online) and time.monotonic() < deadline:
            time.sleep(0.01)
            state = self.device.state()
        assert state.boot_count == boots + 1 and state.online, \
            f"{record.test_id}: the board did not come back after the reset"

    def to_recovery(self, label: str) -> None:
        """The application's os reset with boot mode 1: back into serial recovery."""
        boots = self.device.state().boot_count
        answer = bytes.fromhex("0b0000020000f005bfff")
        self.exchange(f"{label} <- os reset boot_mode 1", self.zephyr_line_bytes(BOOT_MODE_RESET),
                      BOOT_MODE_RESET, [(answer, {"header": Header.parse(answer).fields()},
                                         self.zephyr_line_bytes(answer))])
        deadline = time.monotonic() + REBOOT_TIMEOUT_S
        while not (self.device.state().boot_count > boots and self.device.in_recovery()) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.device.in_recovery(), f"{label}: boot mode 1 did not enter recovery"

    def boot_log(self, record: Record, since: int) -> None:
        """MCUboot's (and the application's) console against the record, then the recorder's
        probe: answered by the application or by MCUboot, as recorded."""
        want = boot_lines([str(line) for line in record.raw["console_summary"]])
        got = boot_lines(self.device.console[since:])
        assert got == want, f"{record.test_id}: console differs\n  expected {want}\n  got  {got}"
        probe = record.raw.get("probe_echo")
        if probe:
            answer = bytes.fromhex(probe["response_hex"])
            line = self.zephyr_line_bytes(answer) if record.raw.get("answered_by") == "app" \
                else self.line_bytes(answer)
            self.exchange(f"{record.test_id} probe", self.zephyr_line_bytes(PROBE), PROBE,
                          [(answer, {"header": Header.parse(answer).fields()}, line)])


def _recovery_answer(record: Record) -> bool:
    """The recorded answer is MCUboot's params answer (one buffer), not smp_svr's."""
    payloads = [d.get("payload") for d in record.decoded]
    return any(isinstance(p, dict) and p.get("buf_count") == 1 and "buf_size" in p
               for p in payloads)


def _is_reset(record: Record) -> bool:
    """An os reset (recovery's or the application's) the recorded board answered."""
    request = record.request or b""
    return (len(request) >= HEADER_SIZE and bool(record.responses)
            and struct.unpack_from(">H", request, 4)[0] == 0 and request[7] == 5)


def _upload_off(record: Record, images: Images) -> int | None:
    """The offset of a recorded chunk of a summarized upload."""
    if record.request is None or images.upload_of(record) is None:
        return None
    try:
        args = decode(record.request[HEADER_SIZE:])
    except ValueError:
        return None
    off = args.get("off") if isinstance(args, dict) else None
    return off if isinstance(off, int) else None


@pytest.mark.parametrize("file", FILES)
def test_profile_matches_build(file: str) -> None:
    """The built-in profile is configured like the recorded build."""
    transcript = load_transcript(file)
    info = load_builds()[transcript.build]
    profile = load_profile(transcript.build)
    fw, mcuboot = profile.firmware, profile.mcuboot
    assert mcuboot is not None
    rec = mcuboot.serial_recovery
    assert sorted(fw.groups) == sorted(info["groups"])
    assert (fw.buf_size, fw.buf_count) == (info["buf_size"], info["buf_count"])
    assert rec.enabled and rec.max_receive_size == info["recovery"]["max_receive_size"]
    assert rec.max_line_input_len == info["recovery"]["max_line_input_len"]
    assert rec.framing == ("raw" if info["transport"] == "serial_raw" else "console")
    assert rec.params == ("(params)" in info["recovery"]["mcuboot"])
    assert mcuboot.mode == "ram-load" and mcuboot.signature == info["recovery"]["signature"]
    assert profile.board.partitions[1].size == info["recovery"]["slot_size"]


@pytest.mark.parametrize("file", FILES)
def test_replay(file: str, smp_device_factory: Callable[..., EmulatedDevice],
                subtests: pytest.Subtests, request: pytest.FixtureRequest) -> None:
    """Every record of ``file`` in order on one board (see the module docstring)."""
    transcript = load_transcript(file)
    raw = transcript.info["transport"] == "serial_raw"
    meta = next(r for r in transcript.records if r.case == "meta.images")
    images = Images(meta.raw["images"], transcript.records)
    device = smp_device_factory(transcript.build, time_scale=TIME_SCALE, serial=True)
    assert device.serial_path is not None and device.in_recovery()
    counts = {"replayed": 0, "boot logs": 0, "notes": 0}
    with LineClient(device.serial_path) as client:
        replay = Replay(device, client, raw, images)
        for record in transcript.records:
            with subtests.test(msg=record.test_id):
                if record.case == "boot.console":
                    replay.boot_log(record, 0)
                    counts["boot logs"] += 1
                elif record.case.endswith(".boot_log"):
                    replay.boot_log(record, replay.reset_at)
                    counts["boot logs"] += 1
                elif record.case.endswith(".summary"):
                    summary = record.raw["summary"]
                    if replay.next_off < summary["final_off"]:
                        replay.catch_up(summary["final_off"], record.test_id)
                    counts["notes"] += 1
                elif record.request is None:
                    counts["notes"] += 1
                else:
                    off = _upload_off(record, images)
                    if off and off > replay.next_off:
                        replay.catch_up(off, record.test_id)
                    if raw and not record.case.endswith(".next"):
                        time.sleep(QUIET_S)
                    if record.case == "raw.truncated_then_frame.next":
                        client.write(TRUNCATED_FRAME)
                    if _recovery_answer(record) and not device.in_recovery():
                        replay.to_recovery(record.test_id)
                    replay.replay(record)
                    counts["replayed"] += 1
    line = f"{file}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
    request.config.stash.setdefault(SUMMARY_KEY, {})[file] = line
    total = sum(1 for r in transcript.records if r.request is not None)
    assert counts["replayed"] == total, line
