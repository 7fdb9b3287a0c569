"""Fuzz targets: where hostile bytes enter smpsim, fed as the transports feed them.

* ``server/<profile>``: SMP units straight into ``Server.handle`` of a booted board of every
  built-in profile (a UDP datagram is one unit);
* ``console/<profile>``: bytes on a UART in console framing (or the shell's), through Zephyr's
  RX buffer rules, SMP packets to the server and text to the UART shell;
* ``raw/<profile>``: bytes on a raw SMP UART;
* ``ble/<profile>``: GATT writes through the SMP characteristic's reassembly;
* ``recovery/<profile>``: bytes on the UART of MCUboot in serial recovery (the recovery button
  held), through MCUboot's own receiver (console or raw) to its SMP server.

A fuzz input is bytes (what atheris mutates, guided by coverage); :class:`Draw` reads them as
choices, so that most inputs are structured: SMP headers with the catalog's groups and commands,
CBOR maps with the keys the handlers read and values of every type, whole and broken framing,
shell command lines. The same bytes always make the same units, so a saved input replays
without atheris. The board of a target lives across inputs (an upload spans several), is reset
when a reply asks for it, and is rebuilt now and then. A crash is an exception out of a target,
or a ``handler ... failed`` log (a handler raised: smpsim's bug, answered as rc 1; in serial
recovery, ``serial recovery: G/C failed``, left unanswered).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import cbor2

from smpsim.config import DEFAULT_PROFILE, builtin_profiles, load_profile
from smpsim.config.catalog import GROUPS, SHELL_COMMANDS
from smpsim.device.mcu import Device
from smpsim.device.uart import Uart
from smpsim.mcumgr.boot_serial import BootSerialServer
from smpsim.mcumgr.boot_serial import framing as recovery_framing
from smpsim.mcumgr.dispatcher import ResetEffect
from smpsim.mcumgr.framing.reassembly import Reassembler
from smpsim.mcumgr.framing.serial import (
    ConsoleReceiver,
    Dropped,
    Packet,
    RawReceiver,
    Text,
    encode_packet,
)
from smpsim.mcumgr.header import Header
from smpsim.mcumgr.server import Server

T = TypeVar("T")

REBUILD_EVERY = 5000
"""Inputs a board serves before a fresh one takes over (state to fuzz, but not forever)."""


SERVER_LOGGERS = ("smpsim.mcumgr.server", "smpsim.mcumgr.boot_serial.server")
"""Where the SMP servers log a handler that raised."""


class Crash(AssertionError):
    """A target failed on an input."""


class _HandlerFailures(logging.Handler):
    """Collects the server's ``handler G/C failed`` logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "failed" in message:
            if record.exc_info and record.exc_info[1] is not None:
                message += f": {record.exc_info[1]!r}"
            self.messages.append(message)


@contextlib.contextmanager
def watching() -> Iterator[_HandlerFailures]:
    """Collect handler failures while the block runs (not printed)."""
    handler = _HandlerFailures()
    loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    saved = [(logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        for logger, (propagate, level) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)


# -- reading choices from bytes ------------------------------------------------------------------

class Draw:
    """Choices read from fuzz bytes; past their end every choice is the first one."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        pos = self.pos
        self.pos += 1
        return self.data[pos] if pos < len(self.data) else 0

    def below(self, n: int) -> int:
        """A number from 0 to ``n - 1``."""
        if n <= 256:
            return self.byte() % n
        return int.from_bytes(self.take(4), "big") % n

    def pick(self, choices: Sequence[T]) -> T:
        return choices[self.below(len(choices))]

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk.ljust(n, b"\0") if len(chunk) < n else chunk

    def blob(self, most: int) -> bytes:
        return self.take(self.below(most + 1))

    def text(self, most: int) -> str:
        return self.blob(most).decode("utf-8", "replace")


EDGE_INTS = (0, 1, 2, 7, 8, 31, 32, 255, 256, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
             2**32, 2**63, 2**64 - 1, -1, -2**31, -2**63)


def any_value(d: Draw, depth: int = 0) -> Any:
    """A CBOR value of any kind."""
    kind = d.below(10 if depth < 2 else 8)
    if kind == 0:
        return d.pick(EDGE_INTS)
    if kind == 1:
        return int.from_bytes(d.take(4), "big", signed=True)
    if kind == 2:
        return d.blob(64)
    if kind == 3:
        return d.text(24)
    if kind == 4:
        return bool(d.byte() & 1)
    if kind == 5:
        return None
    if kind == 6:
        return d.pick((0.0, -0.0, 1.5, float("nan"), float("inf"), 1e300))
    if kind == 7:
        return cbor2.CBORTag(d.below(64), d.below(2))
    if kind == 8:
        return [any_value(d, depth + 1) for _ in range(d.below(5))]
    return {d.text(8): any_value(d, depth + 1) for _ in range(d.below(5))}


PATHS = ("/lfs1/a", "/lfs1/dir/b", "/lfs1", "/", "/lfs1/", "/lfs1/" + "x" * 70, "/other/x",
         "lfs1/a", "", "/lfs1/../../etc/passwd", "/lfs1/log.txt", "/lfs1/a\0b")
SHELL_WORDS = (*SHELL_COMMANDS, "ls", "cd", "cat", "mkdir", "rm", "write", "read", "list",
               "thread", "stacks", "uptime", "cycles", "version", "reboot", "cold", "warm",
               "mount", "statvfs", "trunc", "-h", "--help", "/lfs1", "/lfs1/a", "0", "-1",
               "99999999999", "ff", "\x1b[A", "\t", "\"", "get", "set", "2026-01-02")
COMMANDS = {info.group_id: sorted(info.commands.values()) for info in GROUPS.values()}
GROUP_IDS = sorted(COMMANDS)


def _num(d: Draw, upto: int) -> int:
    return d.below(upto) if d.byte() & 3 else d.pick(EDGE_INTS)


def _path(d: Draw) -> str:
    return d.pick(PATHS) if d.byte() & 1 else "/lfs1/" + d.text(20)


def _words(d: Draw) -> list[str]:
    return [d.pick(SHELL_WORDS) if d.byte() & 3 else d.text(10) for _ in range(d.below(6))]


VALUES: dict[str, Callable[[Draw], Any]] = {
    "d": lambda d: d.text(40), "off": lambda d: _num(d, 70000), "len": lambda d: _num(d, 70000),
    "data": lambda d: d.blob(600), "sha": lambda d: d.take(32) if d.byte() & 1 else d.blob(40),
    "upgrade": lambda d: bool(d.byte() & 1), "image": lambda d: d.below(4) - 1, "name": _path,
    "hash": lambda d: d.blob(40), "confirm": lambda d: bool(d.byte() & 1),
    "force": lambda d: bool(d.byte() & 1), "boot_mode": lambda d: d.below(4) - 1,
    "type": lambda d: d.pick(("crc32", "sha256", "md5", "")) if d.byte() & 1 else d.text(8),
    "format": lambda d: "".join(d.pick("snrvbmpioAxq") for _ in range(d.below(12))),
    "datetime": lambda d: d.pick(("2026-01-02T03:04:05", "2026-01-02T03:04:05.678",
                                  "1970-01-01T00:00:00", "2026-13-40T25:61:61"))
    if d.byte() & 1 else d.text(26),
    "query": lambda d: d.pick(("mode", "no-downgrade", "active_b0_slot", ""))
    if d.byte() & 1 else d.text(12),
    "slot": lambda d: d.below(6) - 1, "index": lambda d: d.below(22) - 1,
    "groups": lambda d: [d.pick(GROUP_IDS) if d.byte() & 1 else d.pick(EDGE_INTS)
                         for _ in range(d.below(6))],
    "val": lambda d: d.blob(80), "max_size": lambda d: _num(d, 300),
    "argv": _words,
}
KEYS = sorted(VALUES)


def body(d: Draw) -> bytes:
    """A request payload: mostly a CBOR map of handler keys, sometimes anything."""
    kind = d.below(10)
    if kind == 0:
        return d.blob(48)
    if kind == 1:
        return cbor2.dumps(any_value(d))
    fields: dict[Any, Any] = {}
    for _ in range(d.below(6)):
        key = d.pick(KEYS)
        fields[key] = VALUES[key](d) if d.byte() & 7 else any_value(d)
    if d.below(10) == 0:
        fields[d.text(6)] = any_value(d)
    if kind == 2:  # an indefinite-length map, as some clients encode
        return b"\xbf" + b"".join(cbor2.dumps(k) + cbor2.dumps(v)
                                  for k, v in fields.items()) + b"\xff"
    return cbor2.dumps(fields)


def frame(d: Draw) -> bytes:
    """One SMP frame: a header mostly as clients send it, a body, sometimes a lying length."""
    group = d.pick(GROUP_IDS) if d.byte() & 7 else d.below(65536)
    cmd = d.pick(COMMANDS.get(group, [0])) if d.byte() & 7 else d.below(256)
    op = d.pick((0, 2, 0, 2, 0, 2, 1, 3, 4, 7))
    version = d.pick((1, 1, 1, 1, 0, 0, 2, 3))
    flags = d.pick((0, 0, 0, 0, 1, 255))
    payload = body(d)
    length = len(payload) if d.below(10) else d.below(65536)
    return Header(op, version, flags, length, group, d.byte(), cmd).pack() + payload


def unit(d: Draw) -> bytes:
    """A datagram's worth: a frame, a few, or junk."""
    kind = d.below(8)
    if kind < 5:
        return frame(d)
    if kind < 7:
        return b"".join(frame(d) for _ in range(2 + d.below(2)))
    return d.blob(40)


def _many(d: Draw, make: Callable[[Draw], T], most: int) -> list[T]:
    """``make`` one to ``most`` times, fewer when the bytes run out."""
    items = [make(d)]
    while len(items) < most and d.left > 0:
        items.append(make(d))
    return items


def _damaged(d: Draw, stream: bytes) -> bytes:
    """Now and then a byte changed, dropped or added: line noise."""
    if not stream or d.below(4):
        return stream
    pos = d.below(len(stream))
    how = d.below(3)
    if how == 0:
        return stream[:pos] + bytes([d.byte()]) + stream[pos + 1:]
    if how == 1:
        return stream[:pos] + stream[pos + 1:]
    return stream[:pos] + d.blob(8) + stream[pos:]


def _split(d: Draw, stream: bytes) -> list[bytes]:
    """``stream`` as the reads of a line: cut at a few places."""
    cuts = sorted(d.below(len(stream) + 1) for _ in range(d.below(5)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _recovery_piece(d: Draw) -> bytes:
    kind = d.below(8)
    if kind < 5:
        return recovery_framing.encode_console(frame(d))
    if kind == 5:
        return d.pick((b"\x06\x09", b"\x04\x14", b"\n", b"\r"))
    return d.blob(40)


def recovery_console_chunks(data: bytes) -> list[bytes]:
    """The reads of a UART in MCUboot's console framing ``data`` stands for."""
    d = Draw(data)
    return _split(d, _damaged(d, b"".join(_many(d, _recovery_piece, 5))))


def _console_piece(d: Draw) -> bytes:
    kind = d.below(8)
    if kind < 4:
        return encode_packet(frame(d))
    if kind < 6:
        return (" ".join(_words(d)) + "\r\n").encode("utf-8", "surrogateescape")
    if kind == 6:
        return d.pick((b"\x06\x09", b"\x04\x14", b"\n", b"\r", b"\x03", b"\x1b[A", b"\t",
                       b"\x7f"))
    return d.blob(40)


def server_units(data: bytes) -> list[bytes]:
    """The datagrams ``data`` stands for."""
    return _many(Draw(data), unit, 6)


def console_chunks(data: bytes) -> list[bytes]:
    """The reads of a console UART ``data`` stands for."""
    d = Draw(data)
    return _split(d, _damaged(d, b"".join(_many(d, _console_piece, 5))))


def raw_chunks(data: bytes) -> list[bytes]:
    """The reads of a raw SMP UART ``data`` stands for."""
    d = Draw(data)
    return _split(d, _damaged(d, b"".join(_many(d, unit, 3))))


def ble_writes(data: bytes) -> list[bytes]:
    """The GATT writes ``data`` stands for: packets in MTU - 3 pieces, or cut elsewhere."""
    d = Draw(data)
    writes: list[bytes] = []
    for packet in _many(d, unit, 3):
        if d.below(4):
            size = d.pick((20, 244, 495, 512))
            writes += [packet[i:i + size] for i in range(0, len(packet), size)]
        else:
            writes += _split(d, packet)
    return writes


# -- the targets ---------------------------------------------------------------------------------

class FuzzBoard:
    """A booted board of one profile answering units as a runner at time scale 0 does."""

    def __init__(self, profile: str) -> None:
        self.profile = load_profile(profile)
        self.device = Device(self.profile)
        self.server = Server(self.device)
        self.uart = Uart(self.device)
        self._boot()

    def _boot(self) -> None:
        for _ in range(4):  # a crashing image makes MCUboot revert within a few boots
            if self.device.reset().running:
                self.uart.booted()
                return
        raise Crash(f"{self.profile.name}: the board no longer boots")

    def unit(self, data: bytes) -> None:
        """One SMP unit; a reset the reply asks for happens before the next one."""
        reply = self.server.handle(data)
        if any(isinstance(effect, ResetEffect) for effect in reply.effects):
            self._boot()

    def typed(self, data: bytes) -> None:
        """Text on the UART (the shell, when the build has one)."""
        _, reboot = self.uart.typed(data, True)
        if reboot is not None:
            self._boot()

    def close(self) -> None:
        self.device.close()


class Fed:
    """A target's state: a board and whatever stands in front of it. ``feed`` takes one fuzz
    input and returns how many units (datagrams, reads, writes) it made."""

    units: Callable[[bytes], list[bytes]] = staticmethod(server_units)

    def __init__(self, profile: str) -> None:
        self.board = FuzzBoard(profile)

    def feed(self, data: bytes) -> int:
        units = self.units(data)
        for each in units:
            self.take(each)
        return len(units)

    def take(self, unit: bytes) -> None:
        self.board.unit(unit)


class ConsoleFed(Fed):
    units = staticmethod(console_chunks)

    def __init__(self, profile: str) -> None:
        super().__init__(profile)
        fw = self.board.profile.firmware
        self.rx = ConsoleReceiver(fw.buf_size, rx_buf_size=fw.serial.rx_buf_size,
                                  rx_buf_count=fw.serial.rx_buf_count,
                                  shell=fw.serial.transport == "shell")
        self.boots = self.board.device.boot_count

    def take(self, unit: bytes) -> None:
        if self.board.device.boot_count != self.boots:  # the UART restarts with the board
            self.boots = self.board.device.boot_count
            self.rx.reset()
        for event in self.rx.feed(unit):
            if isinstance(event, Packet):
                self.board.unit(event.data)
            elif isinstance(event, Text):
                self.board.typed(event.data)
            elif isinstance(event, Dropped) and event.reason == "no buffer":
                self.board.uart.rx_buffer_lost()


class RawFed(Fed):
    units = staticmethod(raw_chunks)

    def __init__(self, profile: str) -> None:
        super().__init__(profile)
        fw = self.board.profile.firmware
        self.rx = RawReceiver(fw.buf_size, input_timeout_s=fw.serial.input_timeout_ms / 1000)
        self.now = 0.0

    def take(self, unit: bytes) -> None:
        self.now += 0.001
        for event in self.rx.feed(unit, self.now, bytewise=True):
            if isinstance(event, Packet):
                self.board.unit(event.data)


class BleFed(Fed):
    units = staticmethod(ble_writes)

    def __init__(self, profile: str) -> None:
        super().__init__(profile)
        fw = self.board.profile.firmware
        self.rx = Reassembler(fw.buf_size, reassembly=fw.ble.reassembly)

    def take(self, unit: bytes) -> None:
        packet = self.rx.collect(unit).packet
        if packet is not None:
            self.board.unit(packet)


class RecoveryFed(Fed):
    """MCUboot in serial recovery: the button is held through every reset."""

    def __init__(self, profile: str) -> None:
        self.board = FuzzBoard.__new__(FuzzBoard)
        self.board.profile = load_profile(profile)
        self._new_device()
        rec = self.server.config
        self.raw = rec.framing == "raw"
        self.rx: recovery_framing.ConsoleReceiver | recovery_framing.RawReceiver = \
            recovery_framing.RawReceiver(rec.max_receive_size, rec.max_line_input_len,
                                         rec.raw_input_timeout_ms / 1000) if self.raw \
            else recovery_framing.ConsoleReceiver(rec.max_receive_size, rec.max_line_input_len)
        self.units = staticmethod(ble_writes if self.raw else recovery_console_chunks)
        self.now = 0.0
        self._boot()

    def _new_device(self) -> None:
        self.device = self.board.device = Device(self.board.profile)
        self.device.hold_button()
        self.server = BootSerialServer(self.device)

    def _boot(self) -> None:
        if not self.device.reset().recovery:
            # A build that enters recovery for want of an application now has one (an upload
            # made a valid image): start again from a new board.
            self.device.close()
            self._new_device()
            if not self.device.reset().recovery:
                raise Crash(f"{self.board.profile.name}: no serial recovery")
        self.rx.reset()

    def take(self, unit: bytes) -> None:
        self.now += 0.001
        if isinstance(self.rx, recovery_framing.RawReceiver):
            packets = self.rx.feed(unit, self.now)
        else:
            packets = self.rx.feed(unit)
        for packet in packets:
            reply = self.server.handle(packet)
            if any(isinstance(effect, ResetEffect) for effect in reply.effects):
                self._boot()


@dataclass(frozen=True)
class Target:
    """A place to fuzz: a profile and what stands between the bytes and its board."""

    name: str
    profile: str
    fed: type[Fed]

    def make(self) -> Fed:
        return self.fed(self.profile)

    @property
    def folder(self) -> str:
        """Its corpus folder's name."""
        return self.name.replace("/", "_")


def targets() -> list[Target]:
    """Every target: the server under each built-in profile, each framer, BLE reassembly."""
    found = [Target(f"server/{name}", name, Fed) for name in builtin_profiles()
             if _boots(name)[0]]
    found += [
        Target("console/native_sim_serial", "native_sim_serial", ConsoleFed),
        Target("console/native_sim_shell", "native_sim_shell", ConsoleFed),
        Target("console/nrf52840dk", "nrf52840dk", ConsoleFed),
        Target("raw/native_sim_serial_raw", "native_sim_serial_raw", RawFed),
        Target("ble/nrf52840dk", "nrf52840dk", BleFed),
    ]
    seen = set()
    names = sorted(builtin_profiles(), key=lambda n: n != DEFAULT_PROFILE)
    for name in names:  # one per recovery build (the nRF-based boards share one)
        mcuboot = load_profile(name).mcuboot
        if mcuboot is not None and _boots(name)[1] and mcuboot.serial_recovery not in seen:
            seen.add(mcuboot.serial_recovery)
            found.append(Target(f"recovery/{name}", name, RecoveryFed))
    return found


@functools.cache
def _boots(name: str) -> tuple[bool, bool]:
    """(the application runs after a plain boot, MCUboot enters serial recovery with the
    recovery button held)."""
    plain = Device(load_profile(name))
    held = Device(load_profile(name))
    held.hold_button()
    try:
        return plain.reset().running, held.reset().recovery
    finally:
        plain.close()
        held.close()


def by_name(name: str) -> Target:
    """The target called ``name`` (or whose corpus folder is ``name``)."""
    for target in targets():
        if name in (target.name, target.folder):
            return target
    raise KeyError(name)


def encode_corpus(inputs: list[bytes]) -> bytes:
    """A reproducer's bytes: fuzz inputs to feed a fresh target in order."""
    return cbor2.dumps(inputs)


def decode_corpus(data: bytes) -> list[bytes]:
    """The fuzz inputs of a reproducer."""
    inputs: list[bytes] = cbor2.loads(data)
    return inputs


def replay(target: Target, inputs: list[bytes]) -> list[str]:
    """Feed ``inputs`` to a fresh ``target``; the handler failures seen (an exception out of
    the target propagates)."""
    with watching() as failures:
        fed = target.make()
        try:
            for data in inputs:
                fed.feed(data)
        finally:
            fed.board.close()
    return failures.messages
