"""Replay of the real QEMU MCUboot DFU transcript (``qemu_cortex_m0_img.jsonl``) against smpsim.

**How.** The records run in file order against one device of the ``qemu_cortex_m0_img`` profile,
straight through ``Server.handle``, with ``device.reset()`` where the recorder power-cycled the
board after an os reset. Not over UDP with ``smp_device_factory``: the records were taken over
the console UART, which smpsim does not have yet, so any transport would be a stand-in and the
SMP frames are what is compared; driving the device directly also lets the test provision
slot 0 before the first boot, reset at exactly the recorded points, and read the console to
compare MCUboot's boot log with the ``*.boot_log`` records.

**Images.** The recorder's images are builds we do not have. Ours are made by imgtool with the
same header size, version, payload size and TLV layout (hash only), so each file has the
recorded length and the recorded first 0x200 bytes (header + zero padding); only the payload,
and so the hashes, differ. ``meta.images`` gives the recorded TLV hash of each version; those
are mapped to ours in requests and expected answers (a 32-byte hash keeps every length, so the
recorded frames stay valid byte for byte). Upload ``data`` beyond the header region is
regenerated from our image at the recorded offset and length. The recorder's factory image is
0.0.0 (hash 1baa22…) while smpsim's factory image is 1.0.0: the test programs our 0.0.0 image
into slot 0 (``device.flash.program``, as a factory would) before the first boot, so versions
need no mapping and the upgrade-only check meets the recorded running version.

**Gaps.** This file holds about two thirds of what was recorded. Where a missing exchange
changed the device (an erase, a whole upload, a test request, a reset), :data:`GAPS` re-creates
it before the record that depends on it, with its expected answer taken from a neighbouring
record, the upload protocol, or the README's notes on the same run. Each gap names its evidence.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest

from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.mcumgr.dispatcher import ResetEffect
from smpsim.mcumgr.server import Server

from .compare import compare_response, decode
from .records import (
    HEADER_SIZE,
    SUMMARY_KEY,
    Header,
    Kind,
    Record,
    Transcript,
    load_builds,
    load_transcript,
    plan,
    split_unit,
    summarize,
)

FILE = "qemu_cortex_m0_img.jsonl"
BUILD = "qemu_cortex_m0_img"
IMG, OS = 1, 0
UPLOAD, STATE, ERASE, RESET = 1, 0, 5, 5
HEADER_REGION = 0x200
"""imgtool ``--header-size`` of the recorded images (``meta.images`` ``hdr_size``)."""
MIN_REPLAYED = 85
"""Floor of records replayed from the file (every os and img exchange)."""

FILE_SHAS = {
    "aee6324c552f5046711e4c7733bfadb72d4b092d7e9442253bcbcef07a82fbfd": "1.2.3+4",
    "e96f3b40d10418018caa1c3f9776d3bbdd542f5612e3caad3a223bb0b2a24c54": "0.0.0",
}
"""Recorded upload ``sha`` values (SHA-256 of the recorder's files) -> the version of ours.
aee6… heads every upload of the 1.2.3+4 header; e96f… the first chunks carrying the 0.0.0
header. Other ``sha`` values in the file (``2222…``, ``0101…``) are deliberately foreign."""

NOTES = {
    "meta.images": "the recorded images: the source of the hash mapping, checked against ours",
    "meta.server_stopped": "the harness stopped QEMU: nothing to compare",
}
"""Records without a request that are neither boot logs nor upload summaries, and their use."""

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3},\d{3}\] ")
QEMU_ZERO_TRAILER = ("magic=bad, swap_type=0x0, copy_done=0x2, image_ok=0x2",
                     "magic=unset, swap_type=0x1, copy_done=0x3, image_ok=0x3")
"""QEMU's nRF51 flash starts as 0x00, so MCUboot read never-written trailers as bad (README);
on NOR flash (and in smpsim) they read erased. Applied to the power-on log only."""


# ----------------------------------------------------------------------------- our images


@functools.cache
def our_image(version: str, payload: int) -> bytes:
    """Our stand-in for a recorded image: imgtool, hash only, as the recorder signed its own."""
    body = bytes(HEADER_REGION) + hashlib.shake_256(f"qemu {version}".encode()).digest(payload)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.bin"), Path(tmp, "out.bin")
        src.write_bytes(body)
        subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", version,
                        "--header-size", hex(HEADER_REGION), "--align", "4",
                        "--slot-size", "0x1a000", str(src), str(dst)],
                       check=True, capture_output=True)
        return dst.read_bytes()


def _tlv_hash(image: bytes) -> bytes:
    """The SHA-256 TLV value of one of our hash-only images (the first and only TLV)."""
    tlvs = int.from_bytes(image[8:10], "little") + int.from_bytes(image[12:16], "little")
    assert image[tlvs:tlvs + 2] == b"\x07\x69" and image[tlvs + 4:tlvs + 6] == b"\x10\x00"
    return image[tlvs + 8:tlvs + 40]


@dataclass
class Images:
    """Our images by version, and the recorded -> ours mapping of hashes and upload data."""

    by_version: dict[str, bytes]
    swaps: dict[bytes, bytes]
    """Recorded 32-byte value (TLV hash or file sha) -> ours."""
    current: bytes | None = None
    """The image of the upload in progress, to regenerate later chunks from."""

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Images:
        """Build ours from ``meta.images`` and check each against the recorded description."""
        by_version: dict[str, bytes] = {}
        swaps: dict[bytes, bytes] = {}
        for name, info in meta.items():
            version = info["version"].removesuffix("+0")
            image = our_image(version, info["img_size"])
            tlv_off = info["hdr_size"] + info["img_size"]
            ours = {"magic": f"{int.from_bytes(image[:4], 'little'):#010x}",
                    "hdr_size": int.from_bytes(image[8:10], "little"),
                    "img_size": int.from_bytes(image[12:16], "little"),
                    "flags": int.from_bytes(image[16:20], "little"),
                    "tlv_magic": f"{int.from_bytes(image[tlv_off:tlv_off + 2], 'little'):#06x}",
                    "tlv_len": int.from_bytes(image[tlv_off + 2:tlv_off + 4], "little"),
                    "file_len": len(image)}
            assert ours == {k: info[k] for k in ours}, f"meta.images {name}: ours differs"
            by_version[version] = image
            swaps[bytes.fromhex(info["sha256_tlv"])] = _tlv_hash(image)
        for recorded, version in FILE_SHAS.items():
            swaps[bytes.fromhex(recorded)] = hashlib.sha256(by_version[version]).digest()
        return cls(by_version, swaps)

    def bytes_(self, data: bytes) -> bytes:
        """Every recorded 32-byte value in ``data`` replaced by ours (lengths unchanged)."""
        for old, new in self.swaps.items():
            data = data.replace(old, new)
        return data

    def json(self, value: Any) -> Any:
        """The recorder's decoded payload with the recorded hashes replaced by ours."""
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get("hex"), str):
                raw = bytes.fromhex(value["hex"])
                return {"hex": self.swaps.get(raw, raw).hex()}
            return {k: self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value

    def request(self, unit: bytes) -> bytes:
        """A recorded request unit, with our hashes and our upload data."""
        out = b""
        for frame in split_unit(unit):
            raw = frame.header.pack() + frame.payload
            if (frame.decided_by_header is None and frame.header.group == IMG
                    and frame.header.cmd == UPLOAD):
                raw = self._upload(raw)
            out += raw
        return self.bytes_(out + unit[len(out):])

    def _upload(self, raw: bytes) -> bytes:
        try:
            args = decode(raw[HEADER_SIZE:])
        except ValueError:
            return raw
        data, off = args.get("data"), args.get("off")
        if not isinstance(data, bytes) or not isinstance(off, int):
            return raw
        if off == 0:
            if data[:4] != b"\x3d\xb8\xf3\x96" or len(data) < 32:
                return raw  # not an image header: sent as recorded
            version = "{}.{}.{}".format(data[20], data[21], int.from_bytes(data[22:24], "little"))
            build = int.from_bytes(data[24:28], "little")
            self.current = self.by_version[f"{version}+{build}" if build else version]
        if self.current is None or off + len(data) > len(self.current):
            return raw
        ours = self.current[off:off + len(data)]
        if off + len(data) <= HEADER_REGION:
            # The header region is ours byte for byte: nothing to swap, and proof of that.
            assert ours == data, f"upload data at {off} differs in the header region"
            return raw
        assert raw.count(data) == 1
        return raw.replace(data, ours)


# ----------------------------------------------------------------------------- the replay


def normalise(lines: list[str]) -> list[str]:
    """Console lines without colour codes and log timestamps (the uptime differs by nature)."""
    return [LOG_STAMP.sub("", ANSI.sub("", line)) for line in lines]


def off_body(off: int) -> bytes:
    """``{"off": off}`` as zcbor writes it."""
    return b"\xbf\x63off" + cbor2.dumps(off) + b"\xff"


def err_body(rc: int) -> bytes:
    """``{"err": {"group": 1, "rc": rc}}`` as zcbor writes it."""
    return b"\xbf\x63err\xbf\x65group\x01\x62rc" + cbor2.dumps(rc) + b"\xff\xff"


class Replay:
    """One device, its server and console, and the running comparison."""

    def __init__(self, transcript: Transcript, images: Images) -> None:
        self.records = {r.case: r for r in transcript.records}
        self.images = images
        self.device = Device(load_profile(BUILD))
        self.console: list[str] = []
        self.device.console.subscribe(self.console.append)
        slot0 = self.device.partitions.primary(0)
        assert slot0 is not None
        self.device.flash.program(slot0.offset, images.by_version["0.0.0"])
        assert self.device.boot().running
        self.server = Server(self.device)
        self.seq = 0

    # -- exchanges --------------------------------------------------------------------------

    def exchange(self, unit: bytes, expected: list[tuple[bytes, dict[str, Any]]],
                 label: str) -> None:
        """Send ``unit``; every answer must be exactly the expected one (see compare.py)."""
        reply = self.server.handle(unit)
        problems = []
        if len(reply.frames) != len(expected):
            problems.append(f"{len(reply.frames)} response frame(s), expected {len(expected)}")
        frames = split_unit(unit)
        for i, ((want, info), got) in enumerate(zip(expected, reply.frames, strict=False)):
            request = frames[i] if i < len(frames) else None
            problems += [f"response {i}: {p}" for p in compare_response(want, info, got, request)]
        resets = [e for e in reply.effects if isinstance(e, ResetEffect)]
        if resets:
            # The recorder power-cycled the board after each reset answer; so do we.
            self.console.clear()
            if not self.device.reset().running:
                problems.append("the device did not come back after the reset")
        if problems:
            pytest.fail(f"{label}, request {unit[:40].hex()}:\n" + "\n".join(problems),
                        pytrace=False)

    def replay(self, record: Record) -> None:
        """A recorded exchange, hashes and upload data mapped to our images."""
        assert record.request is not None
        unit = self.images.request(record.request)
        expected = [(self.images.bytes_(frame), {**info, "payload": self.images.json(
            info.get("payload"))}) for frame, info in zip(record.responses, record.decoded,
                                                         strict=True)]
        self.exchange(unit, expected, f"{record.test_id} ({record.file}:{record.line})")

    def send(self, group: int, cmd: int, payload: dict[str, Any], body: bytes, label: str,
             *, version: int = 1) -> None:
        """A re-created exchange: one write request, one expected answer body."""
        self.seq = (self.seq + 1) & 0xFF
        data = cbor2.dumps(payload)
        request = Header(version, 2, 0, len(data), group, self.seq, cmd)
        answer = Header(version, 3, 0, len(body), group, self.seq, cmd)
        self.exchange(request.pack() + data, [(answer.pack() + body,
                                               {"header": answer.fields()})], label)

    def body_of(self, case: str) -> bytes:
        """The (mapped) answer body of another record: the expectation for a re-created one."""
        frame = self.images.bytes_(self.records[case].responses[0])
        return frame[HEADER_SIZE:]

    # -- boot logs ----------------------------------------------------------------------------

    def boot_log(self, record: Record, power_on: bool = False) -> None:
        """MCUboot's and the app's console lines since the last reset, against the record."""
        want = [str(line) for line in record.raw["console_text"]]
        if power_on:
            want = [line.replace(*QEMU_ZERO_TRAILER) for line in want]
        got = normalise(self.console)
        assert got == normalise(want), (
            f"{record.test_id}: console differs\n  expected {normalise(want)}\n  got      {got}")


# ----------------------------------------------------------------------------- the gaps


Step = Callable[[Replay], None]


def upload(version: str, start: int) -> Step:
    """The rest of an upload in the recorder's chunking: the first chunk's recorded size, then
    ``chunk_data_bytes`` (the summary record), each answered with the next offset."""
    def run(replay: Replay) -> None:
        image = replay.images.by_version[version]
        first_size, size = chunking(replay)
        off = start
        if off == 0:
            first_chunk(version)(replay)
            off = first_size
        while off < len(image):
            data = image[off:off + size]
            replay.send(IMG, UPLOAD, {"off": off, "data": data}, off_body(off + len(data)),
                        f"re-created upload of {version} at {off}")
            off += len(data)
    return run


def upload_between(version: str, start: int, end: int) -> Step:
    """The recorder's chunks of an upload from ``start`` up to (not including) ``end``."""
    def run(replay: Replay) -> None:
        image = replay.images.by_version[version]
        _, size = chunking(replay)
        for off in range(start, end, size):
            data = image[off:off + size]
            replay.send(IMG, UPLOAD, {"off": off, "data": data}, off_body(off + len(data)),
                        f"re-created upload of {version} at {off}")
    return run


def first_chunk(version: str) -> Step:
    """A first chunk as the recorder sent it: image, len, off, sha (of the file), data."""
    def run(replay: Replay) -> None:
        image = replay.images.by_version[version]
        first_size, _ = chunking(replay)
        replay.images.current = image
        payload = {"image": 0, "len": len(image), "off": 0,
                   "sha": hashlib.sha256(image).digest(), "data": image[:first_size]}
        replay.send(IMG, UPLOAD, payload, off_body(first_size),
                    f"re-created first chunk of {version}")
    return run


def chunking(replay: Replay) -> tuple[int, int]:
    """(first chunk size, later chunk size) of the recorder's uploads."""
    first = decode(replay.records["img.upload.v1_2_3.chunk0.off0"].frames[0].payload)
    summary = replay.records["img.upload.v2.summary"].raw["summary"]
    return len(first["data"]), int(summary["chunk_data_bytes"])


def state_write(version: str | None, confirm: bool, body_case: str, *, v1: bool = False) -> Step:
    """A test/confirm of our image of ``version`` (``None``: no hash); the answer is the state
    body of ``body_case``, a record showing the same state."""
    def run(replay: Replay) -> None:
        payload: dict[str, Any] = {"confirm": confirm}
        if version is not None:
            payload = {"hash": _tlv_hash(replay.images.by_version[version]), **payload}
        replay.send(IMG, STATE, payload, replay.body_of(body_case),
                    f"re-created state write ({version}, confirm={confirm})",
                    version=0 if v1 else 1)
    return run


def erase(slot: int, body: bytes, *, v1: bool = False) -> Step:
    """An img erase of ``slot``."""
    def run(replay: Replay) -> None:
        replay.send(IMG, ERASE, {"slot": slot}, body, f"re-created erase of slot {slot}",
                    version=0 if v1 else 1)
    return run


def reset(replay: Replay) -> None:
    """An os reset (the board is power-cycled after the answer)."""
    replay.send(OS, RESET, {}, b"\xbf\xff", "re-created os reset")


GAPS: dict[str, tuple[str, list[Step]]] = {
    "img.state.after_erase_partial": (
        "the erase of the partial upload (seq 79): the next full upload restarts at 196, "
        "which a resume of the partial one (same sha) would not",
        [erase(1, b"\xbf\xff")]),
    "img.state.after_upload": (
        "the rest of the 1.2.3+4 upload whose first chunk is recorded (the state shows it)",
        [upload("1.2.3+4", 196)]),
    "img.state.test.new.v2": (
        "after the erase the image was uploaded again and tested over v1 first (note: "
        "'v1 then v2 test'); the v1 answer is the v2 one's body",
        [upload("1.2.3+4", 0), state_write("1.2.3+4", False, "img.state.test.new.v2",
                                           v1=True)]),
    "os.reset.tbe_test": (
        "the boot log shows a test swap of 1.2.3 from the reverted state: a test request; "
        "its answer is the state of the same step in the confirm flow",
        [state_write("1.2.3+4", False, "img.state.test.new2")]),
    "os.reset.tbe_no_confirm.boot_log": (
        "README: erasing slot 1 or slot 0 while the unconfirmed test image runs is refused "
        "(err 9, v1 rc 6), slot 2 gives err 10; then the reset whose boot log this is",
        [erase(1, err_body(9)), erase(0, b"\xbf\x62rc\x06\xff", v1=True),
         erase(2, err_body(10)), reset]),
    "os.reset.test_for_confirm.boot_log": (
        "the reset after the test request, whose boot log this is", [reset]),
    "img.upload.v2.chunk1.off196": (
        "the first chunk of the 2.0.0 upload (the summary counts it)", [first_chunk("2.0.0")]),
    "img.upload.v2.chunk194.off49604": (
        "chunks 2 to 193 of the 2.0.0 upload", [upload_between("2.0.0", 452, 49604)]),
    "img.state.after_permanent_request": (
        "the permanent request (confirm with the 2.0.0 hash) the state shows; its answer is "
        "that state", [state_write("2.0.0", True, "img.state.after_permanent_request")]),
}
"""Before the record of that case: why, and the re-created exchanges."""


# ----------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def transcript() -> Transcript:
    """The QEMU transcript, loaded and checked."""
    return load_transcript(FILE)


def test_profile_matches_build() -> None:
    """The built-in profile is configured like the recorded build."""
    info = load_builds()[BUILD]
    fw = load_profile(BUILD).firmware
    assert sorted(fw.groups) == sorted(info["groups"])
    assert (fw.buf_size, fw.buf_count) == (info["buf_size"], info["buf_count"])


def test_selection(transcript: Transcript, request: pytest.FixtureRequest) -> None:
    """Every os and img exchange is replayed; what is left waits for the stat/enum groups."""
    units = plan(transcript)
    kinds, line = summarize(transcript, units)
    request.config.stash.setdefault(SUMMARY_KEY, {})[FILE] = line
    assert kinds[Kind.REPLAY] >= MIN_REPLAYED, line
    for unit in units:
        for record, sel in unit.plan:
            if sel.kind is Kind.LATER:
                assert set(sel.groups) <= {"stat", "enum"}, (record.test_id, sel.why)
            if sel.kind is Kind.NOTE:
                assert (record.case in NOTES or record.case == "boot.console"
                        or record.case.endswith((".boot_log", ".summary"))), record.case
    assert kinds[Kind.INCOMPLETE] == 0, line


def test_gaps_name_existing_records(transcript: Transcript) -> None:
    """Every gap is anchored on a record of the file (a changed file fails here, loudly)."""
    cases = {r.case for r in transcript.records}
    assert set(GAPS) <= cases
    assert {"img.upload.v1_2_3.chunk0.off0", "img.upload.v2.summary"} <= cases


def test_upload_summary_matches_the_recreated_chunking(transcript: Transcript) -> None:
    """The 2.0.0 upload as re-created (first chunk, 256-byte chunks, the recorded ones)."""
    record = next(r for r in transcript.records if r.case == "img.upload.v2.summary")
    summary = record.raw["summary"]
    first = decode(next(r for r in transcript.records
                        if r.case == "img.upload.v1_2_3.chunk0.off0").frames[0].payload)
    size, chunk = summary["image_len"], summary["chunk_data_bytes"]
    assert summary["chunks"] == 1 + math.ceil((size - len(first["data"])) / chunk)
    assert summary["final_off"] == size and summary["last_response"] == {"off": size}
    assert len(first["data"]) + chunk * 193 == 49604  # the recorded chunk 194's offset


def test_replay(transcript: Transcript, subtests: pytest.Subtests) -> None:
    """Every os and img record in order on one device, with the gaps re-created and the
    boot logs compared; one subtest per record (and per gap)."""
    meta = next(r for r in transcript.records if r.case == "meta.images")
    replay = Replay(transcript, Images.from_meta(meta.raw["images"]))
    selection = {record.line: sel for unit in plan(transcript) for record, sel in unit.plan}
    compared_logs = 0
    for record in transcript.records:
        if record.case in GAPS:
            why, steps = GAPS[record.case]
            with subtests.test(msg=f"gap before {record.case}: {why}"):
                for step in steps:
                    step(replay)
        sel = selection[record.line]
        if record.case == "boot.console" or record.case.endswith(".boot_log"):
            with subtests.test(msg=record.test_id):
                replay.boot_log(record, power_on=record.case == "boot.console")
                compared_logs += 1
        elif sel.kind is Kind.REPLAY:
            with subtests.test(msg=record.test_id):
                replay.replay(record)
    assert compared_logs == 7
