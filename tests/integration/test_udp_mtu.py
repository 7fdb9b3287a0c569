"""The UDP endpoint reads at most ``firmware.udp_mtu`` bytes of a datagram, as Zephyr's smp_udp
(``MCUMGR_TRANSPORT_UDP_MTU``) does: the rest of a longer one is lost."""

from __future__ import annotations

import socket
import struct

import cbor2
import pytest

from smpsim.pytest_plugin import EmulatedDevice

pytestmark = pytest.mark.smpsim(profile="native_sim_udp")


def _echo(size: int) -> bytes:
    """An os echo WRITE frame of exactly ``size`` bytes."""
    text = "x" * (size - 8)
    while True:
        body = cbor2.dumps({"d": text})
        if 8 + len(body) <= size:
            break
        text = text[:-1]
    assert 8 + len(body) == size
    return struct.pack(">BBHHBB", 2 | 1 << 3, 0, len(body), 0, 7, 0) + body


def _answer(smp_device: EmulatedDevice, frame: bytes) -> object:
    family = socket.AF_INET6 if ":" in smp_device.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(frame, smp_device.address)
        return cbor2.loads(sock.recv(65536)[8:])


def test_a_datagram_of_the_mtu_is_read_whole(smp_device: EmulatedDevice) -> None:
    mtu = smp_device.profile.firmware.udp_mtu
    assert _answer(smp_device, _echo(mtu)) == {"r": cbor2.loads(_echo(mtu)[8:])["d"]}


def test_a_longer_datagram_loses_what_is_past_the_mtu(smp_device: EmulatedDevice) -> None:
    # The header promises more than the MTU's bytes hold: {"rc": 9} (MGMT_ERR_ECORRUPT).
    assert _answer(smp_device, _echo(smp_device.profile.firmware.udp_mtu + 100)) == {"rc": 9}
