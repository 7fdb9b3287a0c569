"""docker/smp_probe.py, the HEALTHCHECK and Kubernetes probe: a real SMP v2 echo to real boards,
and a refusal of every answer that is not that echo's."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import cbor2
import pytest

from smpsim.config import load_profile
from smpsim.mcumgr.header import Header
from smpsim.pytest_plugin import EmulatedDevice

from .files import PROBE, load_probe

probe_module = load_probe()


def run_probe(*addresses: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the probe as the image does (a script, its own process); (exit code, stderr)."""
    result = subprocess.run([sys.executable, str(PROBE), "--timeout", "1", *addresses],
                            capture_output=True, text=True, timeout=30, check=False,
                            env={**os.environ, **(env or {})})
    assert result.stdout == ""
    return result.returncode, result.stderr


@contextmanager
def fake_server(answer: Callable[[bytes], bytes]) -> Iterator[int]:
    """A UDP server on 127.0.0.1 answering each datagram with ``answer(request)``; its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(answer(data), peer)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


def test_request_is_an_smp_v2_os_echo_write() -> None:
    frame = probe_module.echo_request("probe-42", 7)
    header = Header.parse(frame)
    assert (header.op, header.version, header.group, header.cmd, header.seq) == (2, 1, 0, 0, 7)
    assert header.length == len(frame) - 8
    assert cbor2.loads(frame[8:]) == {"d": "probe-42"}


@pytest.mark.smpsim(profile="nrf52840dk", time_scale=0.0)
def test_passes_on_a_board(smp_device: EmulatedDevice) -> None:
    assert run_probe(f"{smp_device.host}:{smp_device.port}") == (0, "")


@pytest.mark.smpsim(profile="native_sim_udp6", host="::1", time_scale=0.0)
def test_passes_on_an_ipv6_board(smp_device: EmulatedDevice) -> None:
    assert run_probe(f"[::1]:{smp_device.port}") == (0, "")


@pytest.mark.smpsim(profile="native_sim_udp", time_scale=0.0)
def test_address_from_the_environment(smp_device: EmulatedDevice) -> None:
    # The image's HEALTHCHECK runs it without arguments: SMP_PROBE says where the board is.
    address = f"{smp_device.host}:{smp_device.port}"
    assert run_probe(env={"SMP_PROBE": address}) == (0, "")
    code, stderr = run_probe(env={"SMP_PROBE": ""})
    assert code == 2 and "no address" in stderr


def test_every_address_must_answer(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    boards = [smp_device_factory("native_sim_udp", time_scale=0.0) for _ in range(2)]
    addresses = [f"{b.host}:{b.port}" for b in boards]
    assert run_probe(*addresses) == (0, "")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{closed.getsockname()[1]}"
        code, stderr = run_probe(addresses[0], silent, addresses[1])
    assert code == 1
    assert stderr.count("smp-probe:") == 1 and silent in stderr


def test_fails_on_a_board_without_echo(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    profile = load_profile("native_sim_udp")
    groups = dict(profile.firmware.groups)
    groups["os"] = tuple(cmd for cmd in groups["os"] if cmd != "echo")
    board = smp_device_factory(dataclasses.replace(
        profile, firmware=dataclasses.replace(profile.firmware, groups=groups)), time_scale=0.0)
    code, stderr = run_probe(f"{board.host}:{board.port}")
    assert code == 1
    assert "echo failed: {'rc': 8}" in stderr


def _respond(request: bytes, *, op: int = 3, version: int = 1, seq_delta: int = 0,
             body: object = None, length_delta: int = 0) -> bytes:
    header = Header.parse(request)
    payload = cbor2.dumps(body if body is not None else {"r": cbor2.loads(request[8:])["d"]})
    return Header(op, version, 0, len(payload) + length_delta, header.group,
                  (header.seq + seq_delta) & 0xFF, header.cmd).pack() + payload


@pytest.mark.parametrize(("answer", "reason"), [
    (_respond, None),
    (lambda r: b"\x01\x02\x03", "shorter than an SMP header"),
    (lambda r: _respond(r, op=1), "not our echo response: op 1"),
    (lambda r: _respond(r, seq_delta=1), "not our echo response"),
    (lambda r: _respond(r, version=0), "answered SMP version 0"),
    (lambda r: _respond(r, length_delta=2), "header says"),
    (lambda r: _respond(r, body={"r": "someone else"}), "echo answered 'someone else'"),
    (lambda r: _respond(r, body={"err": {"group": 0, "rc": 1}}), "echo failed"),
    (lambda r: _respond(r, body=[1, 2]), "payload is not a CBOR map"),
    (lambda r: Header.parse(r).response(2) + b"\xbf\x61", "truncated CBOR"),
])
def test_checks_the_answer(answer: Callable[[bytes], bytes], reason: str | None) -> None:
    with fake_server(answer) as port:
        code, stderr = run_probe(f"127.0.0.1:{port}")
    if reason is None:
        assert (code, stderr) == (0, "")
    else:
        assert code == 1 and reason in stderr, stderr


def test_indefinite_length_answer_as_zephyr_encodes_it() -> None:
    # Zephyr's zcbor writes indefinite-length maps: bf 61 72 <text> ff.
    def answer(request: bytes) -> bytes:
        text = cbor2.loads(request[8:])["d"].encode()
        body = b"\xbf\x61r" + bytes([0x60 | len(text)]) + text + b"\xff"
        return Header.parse(request).response(len(body)) + body
    with fake_server(answer) as port:
        assert run_probe(f"127.0.0.1:{port}") == (0, "")


def test_bad_address_is_a_usage_error() -> None:
    code, stderr = run_probe("::1:1337")
    assert code == 2 and "[IPV6]:PORT" in stderr
