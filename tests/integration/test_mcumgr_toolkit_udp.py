"""mcumgr-toolkit 0.20.0 (Rust, ciborium) over real UDP, driven from a child process.

The toolkit holds the GIL while it waits for an answer, so it must not share a process with
the device thread: see ``itsupport.run_toolkit``.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import pytest

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import (
    READ,
    WRITE_RSP,
    echo_frame,
    parse_frame,
    run_toolkit,
    udp_socket,
    wait_until,
)


class Relay:
    """A UDP relay between one client and the device that records (and can drop) datagrams."""

    def __init__(self, device: tuple[str, int], drop_first: int = 0) -> None:
        self.inbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inbound.bind(("127.0.0.1", 0))
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.upstream.connect(device)
        self.drop_first = drop_first
        self.requests: list[bytes] = []
        """Every datagram from the client, dropped ones included."""
        self.answers: list[bytes] = []
        self._client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def port(self) -> int:
        return int(self.inbound.getsockname()[1])

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.inbound, self.upstream], [], [], 0.05)
            if self.inbound in ready:
                data, self._client = self.inbound.recvfrom(65536)
                self.requests.append(data)
                if len(self.requests) > self.drop_first:
                    self.upstream.send(data)
            if self.upstream in ready:
                data = self.upstream.recv(65536)
                self.answers.append(data)
                if self._client is not None:
                    self.inbound.sendto(data, self._client)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.inbound.close()
        self.upstream.close()


@pytest.fixture
def relay(smp_device: EmulatedDevice) -> Iterator[Relay]:
    with Relay(smp_device.address) as r:
        yield r


def test_echo_is_sent_as_read_and_answered(smp_device: EmulatedDevice, relay: Relay) -> None:
    [answer] = run_toolkit("127.0.0.1", relay.port, ["os_echo", "hello toolkit"])
    assert answer == "hello toolkit"
    [request] = relay.requests
    header, body = parse_frame(request)
    assert (header["op"], header["group"], header["cmd"]) == (READ, 0, 0)
    assert body == {"d": "hello toolkit"}
    [reply] = relay.answers
    reply_header, _ = parse_frame(reply)
    assert reply_header["op"] == READ + 1
    assert reply_header["seq"] == header["seq"]


def test_os_commands(smp_device: EmulatedDevice) -> None:
    params, info_default, info_all, tasks, bootloader = run_toolkit(
        smp_device.host, smp_device.port,
        ["os_mcumgr_parameters"], ["os_application_info"], ["os_application_info", "a"],
        ["os_task_statistics"], ["os_bootloader_info"])
    assert (params["buf_size"], params["buf_count"]) == (2475, 4)
    assert info_default == "Zephyr"
    assert info_all == ("Zephyr Zephyr v4.4.0 4.4.0 Sat Nov 21 12:00:00 2026 arm cortex-m4 "
                        "nrf52840dk/nrf52840 Zephyr")
    threads = smp_device.profile.firmware.threads
    assert sorted(tasks) == sorted(t.name for t in threads)
    for tid, thread in enumerate(threads):
        task = tasks[thread.name]
        assert (task["prio"], task["tid"], task["state"]) == (thread.prio, tid, thread.state)
        # The toolkit turns Zephyr's 32-bit words back into bytes.
        assert (task["stksiz"], task["stkuse"]) == (thread.stack_size, thread.stack_used)
    assert bootloader == {"name": "MCUboot", "mode": 3, "no_downgrade": False}


def test_errors_raise_with_the_zephyr_name(smp_device: EmulatedDevice) -> None:
    not_set, bad_format = run_toolkit(smp_device.host, smp_device.port,
                                      ["os_get_datetime"], ["os_application_info", "q"])
    assert "OS_MGMT_ERR_RTC_NOT_SET" in not_set["error"]
    assert "OS_MGMT_ERR_INVALID_FORMAT" in bad_format["error"]


def test_datetime_set_then_get(smp_device: EmulatedDevice) -> None:
    wrote, read = run_toolkit(smp_device.host, smp_device.port,
                              ["os_set_datetime", "2026-11-21T12:34:56"], ["os_get_datetime"])
    assert wrote is None
    assert read == "2026-11-21T12:34:56"


def test_reset_then_echo(smp_device: EmulatedDevice) -> None:
    [reset] = run_toolkit(smp_device.host, smp_device.port, ["os_system_reset", False, None])
    assert reset is None
    wait_until(lambda: smp_device.state().boot_count == 2 and smp_device.state().online)
    [echo] = run_toolkit(smp_device.host, smp_device.port, ["os_echo", "back"])
    assert echo == "back"
    assert smp_device.state().boot_count == 2


def test_retransmits_with_the_same_sequence_number(smp_device: EmulatedDevice) -> None:
    with Relay(smp_device.address, drop_first=1) as relay:
        [answer] = run_toolkit("127.0.0.1", relay.port, ["os_echo", "lost once"], timeout_ms=300)
    assert answer == "lost once"
    first, second = relay.requests  # the first never reached the device
    assert first == second  # same bytes, so the same sequence number
    [reply] = relay.answers
    assert parse_frame(reply)[0]["seq"] == parse_frame(first)[0]["seq"]


def test_duplicate_sequence_number_is_answered_each_time(smp_device: EmulatedDevice) -> None:
    with udp_socket(smp_device.address) as sock:
        request = echo_frame(seq=42, text="twice")
        sock.send(request)
        sock.send(request)
        answers = [sock.recv(4096), sock.recv(4096)]
    assert answers[0] == answers[1]
    header, body = parse_frame(answers[0])
    assert (header["op"], header["seq"]) == (WRITE_RSP, 42)
    assert body == {"r": "twice"}
