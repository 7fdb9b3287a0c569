"""The golden records: finding, loading and checking them, and choosing what to replay.

The records are real Zephyr's answers, vendored in ``tests/golden/`` (its README says where they
come from). A missing folder, file or key is a test *failure* whose
message says what was looked for where, never a skip: a conformance suite that quietly replays
nothing would pass forever.

What is replayed (:func:`select`) is decided per record from its request bytes, so the selection
widens by itself as groups are implemented: a record is replayed when every request frame in it

* targets a group smpsim implements (``smpsim.mcumgr.groups.IMPLEMENTED``), or
* targets a group the recorded build does not enable at all (index.json ``groups``; an unknown
  group id counts as not enabled): ``{"rc": 8}`` is then the expected, implemented answer, or
* is answered from its header alone, before any handler is looked up: an op other than READ or
  WRITE, SMP version 2 or 3, or a header length promising more bytes than the unit holds (this
  covers garbage read as a header). A unit with no complete header (under 8 bytes, or empty)
  expects silence and is replayed too.

Anything else waits for its group ("later"). Records without a request (``meta.*``, the
``*.process`` notes of the reset file) are notes, not exchanges.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import pytest

import golden
from smpsim.config.catalog import GROUPS
from smpsim.mcumgr.groups import IMPLEMENTED

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository: the parent of ``tests/``."""
GOLDEN_DIR = golden.DIR
"""Where the records are: ``tests/golden/``."""

HEADER_SIZE = 8
_HEADER = struct.Struct(">BBHHBB")
READ, WRITE = 0, 2
GROUP_NAMES = {info.group_id: name for name, info in GROUPS.items()}
"""Wire group id -> catalog (profile and index.json) group name."""
OS_GROUP, OS_ECHO, OS_RESET = 0, 0, 5

SUMMARY_KEY = pytest.StashKey[dict[str, str]]()
"""config.stash: transcript file -> its selection summary line, printed after the run."""

BUILD_ALIASES = {
    "qemu_cortex_m0_serial (MCUboot)": "qemu_cortex_m0_img",
    **{f"{key} (MCUboot serial recovery; {hexfile})": key for key, hexfile in (
        ("mps2_an385_serial_recovery",
         "zephyr_f33aa2bc4a43_smp_server_27c54835_mps2_an385_serial_recovery.hex"),
        ("mps2_an385_serial_recovery_raw",
         "zephyr_f33aa2bc4a43_smp_server_27c54835_mps2_an385_serial_recovery_raw.hex"),
        ("mps2_an385_serial_recovery_buf1024",
         "zephyr_4.4.0_smp_server_0eae053d_mps2_an385_serial_recovery_buf1024.hex"))},
}
"""Record ``build`` names that differ from their index.json key (the QEMU recorders wrote their
own label, with the fixture's file name, into every record)."""

RECORD_KEYS = ("case", "build", "transport", "request_hex", "responses_hex", "responses", "note")
"""Keys every record has (README "Record format")."""
HEADER_KEYS = ("version", "op", "flags", "length", "group", "seq", "cmd")
"""Decoded header fields compared for every response."""


def fail(message: str) -> NoReturn:
    """Fail the running test with ``message`` alone (no traceback into this module)."""
    pytest.fail(message, pytrace=False)


@dataclass(frozen=True)
class Header:
    """An SMP header, decoded here independently of smpsim's own parser."""

    version: int
    op: int
    flags: int
    length: int
    group: int
    seq: int
    cmd: int

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> Header:
        """Decode the 8 bytes at ``offset``; bits 5-7 of byte 0 are reserved and dropped."""
        byte0, flags, length, group, seq, cmd = _HEADER.unpack_from(data, offset)
        return cls((byte0 >> 3) & 0x03, byte0 & 0x07, flags, length, group, seq, cmd)

    def pack(self) -> bytes:
        """Encode the header (reserved bits 0)."""
        return _HEADER.pack((self.version << 3) | self.op, self.flags, self.length, self.group,
                            self.seq, self.cmd)

    def fields(self) -> dict[str, int]:
        """The compared fields by name."""
        return {key: getattr(self, key) for key in HEADER_KEYS}


@dataclass(frozen=True)
class Frame:
    """One request frame of a unit, as Zephyr's ``smp_process_request_packet`` takes it."""

    header: Header
    payload: bytes
    """The ``length`` bytes after the header (what there is of them)."""
    decided_by_header: str | None
    """Why the header alone decides the answer, before any handler lookup; ``None`` if not."""


def split_unit(unit: bytes) -> list[Frame]:
    """The frames Zephyr reads from one transport unit (datagram), in order.

    Frames follow each other at ``8 + length``; fewer than 8 bytes left ends the unit silently.
    A header answered from itself alone ends the unit, since Zephyr stops at an error answer.
    """
    frames = []
    pos = 0
    while len(unit) - pos >= HEADER_SIZE:
        header = Header.parse(unit, pos)
        start = pos + HEADER_SIZE
        reason = None
        if header.length > len(unit) - start:
            reason = "header length beyond the unit (rc 9)"
        elif header.op not in (READ, WRITE):
            reason = f"op {header.op} (rc 8)"
        elif header.version > 1:
            reason = f"version {header.version} (rc 13)"
        frames.append(Frame(header, unit[start:start + header.length], reason))
        if reason is not None:
            break
        pos = start + header.length
    return frames


@dataclass(frozen=True)
class Record:
    """One line of a transcript: one request unit and the real server's answer to it."""

    file: str
    """Transcript file name."""
    line: int
    """1-based line number in the file."""
    case: str
    build: str
    transport: str
    request: bytes | None
    """The unit exactly as sent; ``None`` for notes that sent nothing."""
    responses: tuple[bytes, ...]
    """The response frames (one datagram each), in arrival order."""
    decoded: tuple[dict[str, Any], ...]
    """The recorder's decoding of each response (``header``, ``payload``, ...)."""
    server_exited: bool
    """The real process had exited (native_sim exits on reset) when this was sent."""
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def test_id(self) -> str:
        """``<file stem>::<case>``, the id of this record's subtest."""
        return f"{Path(self.file).stem}::{self.case}"

    @property
    def frames(self) -> list[Frame]:
        """The request frames."""
        return split_unit(self.request) if self.request is not None else []

    def is_os_reset(self) -> bool:
        """Whether the unit asks for an os reset that the recorded server answered."""
        return bool(self.responses) and any(
            f.decided_by_header is None and f.header.group == OS_GROUP
            and f.header.cmd == OS_RESET and f.header.op == WRITE for f in self.frames)


@dataclass(frozen=True)
class Transcript:
    """One ``*.jsonl`` file and the build it was recorded from."""

    file: str
    build: str
    """index.json key, which is also the name of the built-in smpsim profile."""
    info: dict[str, Any]
    """The index.json entry."""
    records: tuple[Record, ...]

    @property
    def stem(self) -> str:
        """The file name without ``.jsonl``."""
        return Path(self.file).stem


def golden_dir() -> Path:
    """The golden records' folder; fails the test when it is not there."""
    if not GOLDEN_DIR.is_dir():
        fail(f"golden records not found: {GOLDEN_DIR} does not exist (repo root: {REPO_ROOT}).")
    return GOLDEN_DIR


def load_builds() -> dict[str, dict[str, Any]]:
    """index.json: build key -> configuration and transcript files."""
    path = golden_dir() / "index.json"
    try:
        builds: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}")
    for key, info in builds.items():
        for needed in ("transport", "ip_family", "buf_size", "buf_count", "groups",
                       "transcripts"):
            if needed not in info:
                fail(f"{path}: build {key!r} has no {needed!r}")
    return builds


def build_of(file: str, builds: dict[str, dict[str, Any]]) -> str:
    """The build whose ``transcripts`` list ``file``."""
    owners = [key for key, info in builds.items() if file in info["transcripts"]]
    if len(owners) != 1:
        fail(f"index.json: {file} should belong to exactly one build, found {owners}")
    return owners[0]


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        fail(f"{where}: expected a hex string, got {value!r}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        fail(f"{where}: not hex: {value[:40]!r}")


def _record(file: str, line: int, raw: dict[str, Any], build: str) -> Record:
    where = f"{file}:{line}"
    missing = [key for key in RECORD_KEYS if key not in raw]
    if missing:
        fail(f"{where}: record lacks {missing} (README 'Record format')")
    if BUILD_ALIASES.get(raw["build"], raw["build"]) != build:
        fail(f"{where}: record says build {raw['build']!r}, index.json lists the file under "
             f"{build!r}")
    request = None if raw["request_hex"] is None else _hex(raw["request_hex"], where)
    responses = tuple(_hex(h, f"{where} responses_hex") for h in raw["responses_hex"])
    decoded = tuple(raw["responses"])
    if len(decoded) != len(responses):
        fail(f"{where}: {len(responses)} responses_hex but {len(decoded)} decoded responses")
    for i, (frame, info) in enumerate(zip(responses, decoded, strict=True)):
        # The recorder's decoding must agree with its own bytes, or comparing to it is moot.
        if len(frame) < HEADER_SIZE or Header.parse(frame).fields() != {
                key: info.get("header", {}).get(key) for key in HEADER_KEYS}:
            fail(f"{where}: response {i} header does not match its hex {frame.hex()}")
    return Record(file, line, raw["case"], build, raw["transport"], request, responses,
                  decoded, bool(raw.get("server_exited")), raw)


def load_transcript(file: str) -> Transcript:
    """Load and check one transcript file."""
    builds = load_builds()
    build = build_of(file, builds)
    path = golden_dir() / file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    records = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except ValueError as exc:
            fail(f"{file}:{number}: not JSON: {exc}")
        records.append(_record(file, number, raw, build))
    if not records:
        fail(f"{path} holds no records")
    return Transcript(file, build, builds[build], tuple(records))


class Kind(Enum):
    """What the replay does with a record."""

    REPLAY = "replayed"
    LATER = "left for later groups"
    INCOMPLETE = "not replayable from this subset"
    NOTE = "notes (no request)"


@dataclass(frozen=True)
class Selection:
    """The decision for one record."""

    kind: Kind
    why: str
    groups: tuple[str, ...] = ()
    """For LATER: the enabled, not yet implemented groups the record needs."""


def select(record: Record, build_groups: Collection[str]) -> Selection:
    """Whether smpsim can be held to ``record`` now (see the module docstring)."""
    if record.request is None:
        return Selection(Kind.NOTE, "no request was sent")
    later, why = [], []
    for frame in record.frames:
        name = GROUP_NAMES.get(frame.header.group)
        if frame.decided_by_header is not None:
            why.append(f"answered from the header: {frame.decided_by_header}")
        elif name is None or name not in build_groups:
            why.append(f"group {name or frame.header.group} not in the build (rc 8)")
        elif name in IMPLEMENTED:
            why.append(f"group {name} implemented")
        else:
            later.append(name)
    if later:
        groups = tuple(dict.fromkeys(later))
        return Selection(Kind.LATER, f"group {', '.join(groups)} not implemented yet", groups)
    return Selection(Kind.REPLAY, "; ".join(dict.fromkeys(why)) or "no frame: silence expected")


RESET_SUFFIXES = (".pre_echo", ".post_echo", ".process")


def reset_variant(case: str) -> str:
    """``os.reset.<variant>[.pre_echo|.post_echo|.process]`` -> ``<variant>``."""
    if not case.startswith("os.reset."):
        fail(f"reset transcript case {case!r} is not an os.reset.<variant> case")
    variant = case.removeprefix("os.reset.")
    for suffix in RESET_SUFFIXES:
        if variant.endswith(suffix):
            return variant.removesuffix(suffix)
    return variant


@dataclass(frozen=True)
class Unit:
    """Records replayed in order against one freshly started device."""

    label: str
    """``<stem>`` for a whole file, ``<stem>:<variant>`` for one reset case group."""
    plan: tuple[tuple[Record, Selection], ...]

    def replayed(self) -> Iterator[Record]:
        """The records to replay, in file order."""
        return (record for record, sel in self.plan if sel.kind is Kind.REPLAY)


def is_reset_transcript(transcript: Transcript) -> bool:
    """``*_reset.jsonl``: os reset variants, each recorded on a fresh process (README)."""
    return transcript.stem.endswith("_reset")


def _unit(label: str, records: Sequence[Record], build_groups: Collection[str]) -> Unit:
    chosen: list[tuple[Record, Selection]] = []
    reset_replayed = False
    for record in records:
        sel = select(record, build_groups)
        if sel.kind is Kind.REPLAY and record.server_exited and not record.responses:
            if not reset_replayed:
                sel = Selection(Kind.INCOMPLETE, "sent after the process exited, but the reset "
                                "request before it is not in this subset")
        elif sel.kind is Kind.REPLAY and record.is_os_reset():
            reset_replayed = True
        chosen.append((record, sel))
    return Unit(label, tuple(chosen))


def plan(transcript: Transcript) -> list[Unit]:
    """Split a transcript into fresh-device units and select what each replays.

    A whole file is one unit, except a reset transcript: there each ``os.reset.<variant>.*``
    group ran on a fresh process, so each is a unit. A record sent after the real process had
    exited is replayable only after a reset request *in the same unit*: where this subset lacks
    that request, nothing would make the device reset first.
    """
    groups = transcript.info["groups"]
    if not is_reset_transcript(transcript):
        return [_unit(transcript.stem, transcript.records, groups)]
    by_variant: dict[str, list[Record]] = {}
    previous = None
    for record in transcript.records:
        variant = reset_variant(record.case)
        if variant != previous and variant in by_variant:
            fail(f"{record.file}:{record.line}: reset group {variant!r} is not contiguous")
        by_variant.setdefault(variant, []).append(record)
        previous = variant
    return [_unit(f"{transcript.stem}:{variant}", records, groups)
            for variant, records in by_variant.items()]



@dataclass(frozen=True)
class Bridge:
    """An exchange the recorded server had that this subset lacks, put back from the transcript
    of another build where the same scripted exchange was kept.

    The fixture scripts ran the same fs sequence on the UDP and the serial_fs builds, and each
    file keeps a different two thirds of it. Where a later answer depends on a missing request
    (an upload chunk, a transfer reset), the twin's request is sent first and its own recorded
    answer is held to as any record's. Nothing else is bridged.
    """

    file: str
    """Transcript missing the exchange."""
    before: str
    """Case of the record it preceded there."""
    twin: str
    """Transcript holding the same exchange."""
    case: str
    """Its case there."""
    why: str
    """What in the recorded answers shows the exchange happened."""


BRIDGES = (
    Bridge("native_sim_udp.jsonl", "fs.upload.small_resend", "native_sim_serial_fs.jsonl",
           "fs.upload.small_gap",
           "seq 149 is missing; small_resend answers off 3, not 6, so the transfer had been "
           "reset in between, as the gap chunk that comes next in the script resets it"),
    Bridge("native_sim_serial_fs.jsonl", "fs.status.v1", "native_sim_udp.jsonl",
           "fs.upload.off512",
           "seq 37 is missing; status then says 523 after 512 recorded bytes: the 11-byte tail "
           "chunk at off 512"),
    Bridge("native_sim_serial_fs.jsonl", "fs.upload.small_gap", "native_sim_udp.jsonl",
           "fs.upload.small_first",
           "seqs 58-61 are missing; small_gap answers len 3: the first 3 of the 6 bytes of "
           "oracle2.bin were uploaded"),
)
"""Every bridged exchange."""


def bridges_before(record: Record) -> list[Record]:
    """The twin records to replay right before ``record`` (see :class:`Bridge`)."""
    twins = []
    for bridge in BRIDGES:
        if bridge.file != record.file or bridge.before != record.case:
            continue
        found = [r for r in load_transcript(bridge.twin).records if r.case == bridge.case]
        if len(found) != 1 or found[0].request is None or len(found[0].responses) != 1:
            fail(f"bridge for {record.test_id}: {bridge.twin} should hold exactly one "
                 f"answered {bridge.case!r}")
        twins.append(found[0])
    return twins

def summarize(transcript: Transcript, units: Sequence[Unit]) -> tuple[Counter[Kind], str]:
    """Counts per kind and one summary line for the terminal."""
    kinds: Counter[Kind] = Counter()
    later: Counter[str] = Counter()
    for unit in units:
        for _, sel in unit.plan:
            kinds[sel.kind] += 1
            later.update(sel.groups)
    parts = []
    for kind in Kind:
        if kinds[kind] or kind is Kind.REPLAY:
            part = f"{kinds[kind]} {kind.value}"
            if kind is Kind.LATER:
                part += " (" + ", ".join(f"{g} {n}" for g, n in later.most_common()) + ")"
            parts.append(part)
    return kinds, f"{transcript.file}: {', '.join(parts)}"
