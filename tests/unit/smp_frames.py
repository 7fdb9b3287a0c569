"""Helpers shared by the unit tests: devices from profiles, request frames, response bodies."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2

from smpsim.config import Profile, load_profile
from smpsim.device.mcu import Device
from smpsim.mcumgr.codec import encode
from smpsim.mcumgr.dispatcher import GroupHandlers
from smpsim.mcumgr.header import Header
from smpsim.mcumgr.server import Reply, Server

READ, WRITE = 0, 2
V1, V2 = 0, 1


def profile(name: str = "native_sim_udp", **firmware: Any) -> Profile:
    """A built-in profile, with firmware fields replaced."""
    prof = load_profile(name)
    if firmware:
        prof = dataclasses.replace(prof, firmware=dataclasses.replace(prof.firmware, **firmware))
    return prof


def with_os(prof: Profile, **os_changes: Any) -> Profile:
    """``prof`` with ``firmware.os`` fields replaced."""
    fw = prof.firmware
    return dataclasses.replace(
        prof, firmware=dataclasses.replace(fw, os=dataclasses.replace(fw.os, **os_changes)))


def with_board(prof: Profile, **board_changes: Any) -> Profile:
    """``prof`` with ``board`` fields replaced."""
    return dataclasses.replace(prof, board=dataclasses.replace(prof.board, **board_changes))


def server(prof: Profile | str = "native_sim_udp",
           implemented: Mapping[str, GroupHandlers] | None = None) -> Server:
    """A booted device running ``prof``, and its SMP server."""
    device = Device(prof if isinstance(prof, Profile) else load_profile(prof))
    device.boot()
    return Server(device, implemented)


def frame(op: int, group: int, cmd: int, payload: Any = b"", *, seq: int = 0,
          version: int = V2, flags: int = 0, length: int | None = None) -> bytes:
    """A request frame; ``payload`` is raw bytes or a value to encode as CBOR."""
    body = payload if isinstance(payload, bytes) else cbor2.dumps(payload)
    size = len(body) if length is None else length
    return Header(op, version, flags, size, group, seq, cmd).pack() + body


def exchange(srv: Server, unit: bytes | str) -> list[str]:
    """The response frames to ``unit`` (bytes or hex), as hex strings."""
    data = bytes.fromhex(unit) if isinstance(unit, str) else unit
    return [f.hex() for f in srv.handle(data).frames]


def call(srv: Server, op: int, group: int, cmd: int, payload: Any = b"", *,
         version: int = V2, seq: int = 0) -> Any:
    """Send one request and return the decoded body of its single response."""
    frames = srv.handle(frame(op, group, cmd, payload, seq=seq, version=version)).frames
    assert len(frames) == 1
    head = Header.parse(frames[0])
    assert head.length == len(frames[0]) - 8
    return cbor2.loads(frames[0][8:])


def rc_body(rc: int) -> bytes:
    """``{"rc": rc}`` exactly as Zephyr encodes it."""
    return encode({"rc": rc})


def err_body(group: int, rc: int) -> bytes:
    """``{"err": {"group": group, "rc": rc}}`` exactly as Zephyr encodes it."""
    return encode({"err": {"group": group, "rc": rc}})


class BootedBoard:
    """A booted board, its console lines and its SMP server, driven one request at a time;
    subclasses set the group their requests go to by default."""

    group = 0
    """Default group of :meth:`raw` and :meth:`call`."""
    seq = 0
    """Sequence number of every request."""

    def __init__(self, prof: Profile, flash_path: Path | None = None) -> None:
        self.profile = prof
        self.device = Device(prof, flash_path=flash_path)
        self.console: list[str] = []
        self.device.console.subscribe(self.console.append)
        outcome = self.device.boot()
        assert outcome.running, outcome
        self.server = Server(self.device)
        self.last: Reply | None = None

    def raw(self, op: int, cmd: int, payload: Any = None, *, version: int = V2,
            group: int | None = None) -> bytes:
        """One request (``payload`` as bytes or a value to encode); its single response."""
        body = b"" if payload is None else (payload if isinstance(payload, bytes)
                                             else cbor2.dumps(payload))
        header = Header(op, version, 0, len(body), self.group if group is None else group,
                        self.seq, cmd)
        self.last = self.server.handle(header.pack() + body)
        assert len(self.last.frames) == 1
        frame = self.last.frames[0]
        assert Header.parse(frame).length == len(frame) - 8
        return frame

    def call(self, op: int, cmd: int, payload: Any = None, *, version: int = V2,
             group: int | None = None) -> Any:
        """One request; its decoded response body."""
        return cbor2.loads(self.raw(op, cmd, payload, version=version, group=group)[8:])
