"""A small SMP client over UDP (asyncio and cbor2), enough for the demos: MCUmgr parameters,
image state read and write, image upload, reset.

The package must not depend on the test-only clients (smpclient, smpmgr), and a demo needs only
these five requests, one at a time, each retried on a lost datagram as every UDP client does.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator
from typing import Any, cast

import cbor2

from smpsim.transports.udp import parse_hostport

READ, WRITE = 0, 2
READ_RSP, WRITE_RSP = 1, 3
V2 = 1
OS, IMG = 0, 1
HEADER = struct.Struct(">BBHHBB")
MTU = 1472
"""Largest datagram sent: an Ethernet frame's IPv4 payload less the UDP header (no fragments),
and under Zephyr's ``MCUMGR_TRANSPORT_UDP_MTU`` (1500), which truncates longer ones."""


class SmpError(Exception):
    """The board answered with an error, or did not answer."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.frames.put_nowait(data)


class SmpUdpClient:
    """One request in flight at a time; answers matched by sequence number, group and command."""

    def __init__(self, address: str, *, timeout_s: float = 2.0, retries: int = 3) -> None:
        self.host, self.port = parse_hostport(address)
        self.timeout_s = timeout_s
        self.retries = retries
        self._seq = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol = _Datagrams()

    async def __aenter__(self) -> SmpUdpClient:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self._protocol, remote_addr=(self.host, self.port))
        self._transport = transport
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()

    async def request(self, op: int, group: int, cmd: int,
                      body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request; the decoded answer. :class:`SmpError` on an rc or no answer."""
        assert self._transport is not None, "use the client as an async context manager"
        self._seq = (self._seq + 1) & 0xFF
        payload = cbor2.dumps(body or {})
        frame = HEADER.pack(op | V2 << 3, 0, len(payload), group, self._seq, cmd) + payload
        frames = self._protocol.frames
        for _ in range(self.retries + 1):
            while not frames.empty():  # a late answer to an earlier try
                frames.get_nowait()
            self._transport.sendto(frame)
            try:
                async with asyncio.timeout(self.timeout_s):
                    while True:
                        answer = await frames.get()
                        if len(answer) < HEADER.size:
                            continue
                        _, _, length, a_group, a_seq, a_cmd = HEADER.unpack_from(answer)
                        if (a_group, a_seq, a_cmd) == (group, self._seq, cmd):
                            return _checked(cbor2.loads(answer[8:8 + length]))
            except TimeoutError:
                continue
        raise SmpError(f"no answer from {self.host}:{self.port} "
                       f"(group {group}, command {cmd}, {self.retries + 1} tries)")

    async def buf_size(self) -> int:
        """The board's SMP buffer size (os ``mcumgr_params``)."""
        answer = await self.request(READ, OS, 6)
        return int(answer.get("buf_size", 384))

    async def image_state(self) -> list[dict[str, Any]]:
        """img ``state`` read: one entry per slot."""
        answer = await self.request(READ, IMG, 0)
        return cast(list[dict[str, Any]], answer.get("images", []))

    async def test(self, image_hash: bytes) -> list[dict[str, Any]]:
        """Mark an uploaded image for a test boot (pending)."""
        answer = await self.request(WRITE, IMG, 0, {"hash": image_hash, "confirm": False})
        return cast(list[dict[str, Any]], answer.get("images", []))

    async def confirm(self) -> list[dict[str, Any]]:
        """Confirm the running image."""
        answer = await self.request(WRITE, IMG, 0, {"confirm": True})
        return cast(list[dict[str, Any]], answer.get("images", []))

    async def reset(self) -> None:
        """os ``reset``: the board answers, then reboots."""
        await self.request(WRITE, OS, 5)

    async def upload(self, image: bytes) -> AsyncIterator[int]:
        """Upload ``image`` to the secondary slot; yields the offset after each chunk."""
        limit = min(await self.buf_size(), MTU)
        sha = hashlib.sha256(image).digest()
        off = 0
        while off < len(image):
            body: dict[str, Any] = {"image": 0, "off": off, "data": b""}
            if off == 0:
                body.update(len=len(image), sha=sha)
            size = _chunk(body, limit, len(image) - off)
            body["data"] = image[off:off + size]
            answer = await self.request(WRITE, IMG, 1, body)
            off = int(answer["off"])
            yield off


def _chunk(body: dict[str, Any], limit: int, left: int) -> int:
    """The most data bytes (up to ``left``) with which the request frame fits ``limit``."""
    overhead = HEADER.size + len(cbor2.dumps(body))
    size = min(left, limit - overhead)
    # A byte string's length prefix grows with it (1, 2 or 3 bytes here).
    while size > 0 and HEADER.size + len(cbor2.dumps({**body, "data": bytes(size)})) > limit:
        size -= 1
    if size <= 0:
        raise SmpError(f"an SMP buffer of {limit} bytes leaves no room for upload data")
    return size


def _checked(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise SmpError(f"the answer is not a map: {answer!r}")
    rc = answer.get("rc")
    err = answer.get("err")
    if isinstance(rc, int) and rc != 0:
        raise SmpError(f"the board answered rc {rc}")
    if isinstance(err, dict) and err.get("rc"):
        raise SmpError(f"the board answered group {err.get('group')} rc {err.get('rc')}")
    return answer
