#!/usr/bin/python3
"""Health probe: is an SMP server answering on UDP? Sends one SMP v2 echo, checks the answer.

Standard library only, so that it starts in a few milliseconds with the system's python3: the
image's HEALTHCHECK and the Kubernetes probes run it every few seconds. Usage:

    smp-probe [--timeout S] [HOST:PORT ...]      (default: the addresses in $SMP_PROBE)

Exit status 0 when every address answered the echo with its text and no error; 1 otherwise,
with the reason on stderr (one line per address).
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys

_HEADER = struct.Struct(">BBHHBB")
"""op/version byte, flags, length, group, seq, cmd: the 8-byte SMP header."""
_V2 = 1
_WRITE, _WRITE_RSP = 2, 3
_GROUP_OS, _CMD_ECHO = 0, 0


class ProbeError(Exception):
    """The server did not answer, or answered something other than our echo."""


def _text(value: str) -> bytes:
    data = value.encode()
    if len(data) > 23:
        raise ValueError("echo text longer than 23 bytes")
    return bytes([0x60 | len(data)]) + data


def echo_request(text: str, seq: int) -> bytes:
    """An SMP v2 ``os echo`` write request: header, then the CBOR map ``{"d": text}``."""
    body = b"\xa1" + _text("d") + _text(text)
    return _HEADER.pack((_V2 << 3) | _WRITE, 0, len(body), _GROUP_OS, seq, _CMD_ECHO) + body


def _decode(data: bytes, pos: int) -> tuple[object, int]:
    """One CBOR item at ``pos``: the subset an echo answer can hold (ints, strings, maps)."""
    if pos >= len(data):
        raise ProbeError("truncated CBOR")
    major, info = data[pos] >> 5, data[pos] & 0x1F
    pos += 1
    if info == 31 and major in (2, 3, 4, 5):
        return _decode_indefinite(data, pos, major)
    if info < 24:
        arg = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise ProbeError("truncated CBOR")
        arg = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    else:
        raise ProbeError(f"unexpected CBOR byte {data[pos - 1]:#04x}")
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if pos + arg > len(data):
            raise ProbeError("truncated CBOR")
        raw = data[pos:pos + arg]
        return (raw if major == 2 else raw.decode(errors="replace")), pos + arg
    if major == 4:
        items: list[object] = []
        for _ in range(arg):
            item, pos = _decode(data, pos)
            items.append(item)
        return items, pos
    if major == 5:
        mapping: dict[str, object] = {}
        for _ in range(arg):
            key, pos = _decode(data, pos)
            mapping[str(key)], pos = _decode(data, pos)
        return mapping, pos
    raise ProbeError(f"unexpected CBOR major type {major}")


def _decode_indefinite(data: bytes, pos: int, major: int) -> tuple[object, int]:
    items: list[object] = []
    while True:
        if pos >= len(data):
            raise ProbeError("truncated CBOR")
        if data[pos] == 0xFF:
            pos += 1
            break
        item, pos = _decode(data, pos)
        items.append(item)
    if major == 2:
        return b"".join(i for i in items if isinstance(i, bytes)), pos
    if major == 3:
        return "".join(str(i) for i in items), pos
    if major == 4:
        return items, pos
    return {str(k): v for k, v in zip(items[::2], items[1::2], strict=True)}, pos


def check_answer(answer: bytes, text: str, seq: int) -> None:
    """Raise ProbeError unless ``answer`` is the echo response to our request."""
    if len(answer) < _HEADER.size:
        raise ProbeError(f"answer of {len(answer)} bytes is shorter than an SMP header")
    byte0, _, length, group, rseq, cmd = _HEADER.unpack_from(answer)
    op, version = byte0 & 0x07, (byte0 >> 3) & 0x03
    if (op, group, cmd, rseq) != (_WRITE_RSP, _GROUP_OS, _CMD_ECHO, seq):
        raise ProbeError(f"not our echo response: op {op} group {group} cmd {cmd} seq {rseq}")
    if version != _V2:
        raise ProbeError(f"answered SMP version {version}, asked 1 (v2)")
    if length != len(answer) - _HEADER.size:
        raise ProbeError(f"header says {length} payload bytes, datagram has "
                         f"{len(answer) - _HEADER.size}")
    body, _ = _decode(answer, _HEADER.size)
    if not isinstance(body, dict):
        raise ProbeError("payload is not a CBOR map")
    if "rc" in body or "err" in body:
        raise ProbeError(f"echo failed: {body}")
    if body.get("r") != text:
        raise ProbeError(f"echo answered {body.get('r')!r}, sent {text!r}")


def probe(host: str, port: int, timeout: float) -> None:
    """Send one echo to ``host:port`` and check the answer; raise ProbeError if it fails."""
    text = f"probe-{os.getpid() % 100000}"
    seq = os.getpid() & 0xFF
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ProbeError(f"cannot resolve {host}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            sock.send(echo_request(text, seq))
            answer = sock.recv(2048)
        except TimeoutError:
            raise ProbeError(f"no answer within {timeout} s") from None
        except OSError as exc:
            raise ProbeError(str(exc)) from None
    check_answer(answer, text, seq)


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or (":" in host and not bracketed):
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    """Probe every address; 0 when all answered."""
    parser = argparse.ArgumentParser(
        prog="smp-probe", description="Check that SMP servers answer an os echo over UDP.")
    parser.add_argument("addresses", nargs="*", metavar="HOST:PORT",
                        help="where to send the echo (default: $SMP_PROBE, space-separated)")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="S",
                        help="seconds to wait for each answer (default 2)")
    args = parser.parse_args(argv)
    texts = args.addresses or os.environ.get("SMP_PROBE", "").split()
    if not texts:
        parser.error("no address: give HOST:PORT or set SMP_PROBE")
    try:
        addresses = [_hostport(text) for text in texts]
    except ValueError as exc:
        parser.error(str(exc))
    failed = 0
    for host, port in addresses:
        try:
            probe(host, port, args.timeout)
        except ProbeError as exc:
            print(f"smp-probe: {host}:{port}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
