"""Replay of the real native_sim UDP transcripts against smpsim, over real UDP sockets.

Shape: one test per transcript file, ``test_replay[<file>]``, and inside it one subtest per
replayed record, named ``<file stem>::<case>`` (pytest's built-in ``subtests`` fixture). Records
depend on the ones before them (a reset before the echo after it, later an upload before its
download), so they must run in file order against one device, and that device comes from the
plugin's function-scoped ``smp_device_factory``: a test per file keeps both, and subtests still
report every record on its own, e.g.
``SUBFAILED[native_sim_udp::os.echo.write.v2] tests/conformance/...::test_replay[...]``, each with
all of its mismatches listed. A failing record does not stop the ones after it.

Where this subset lacks a request a later answer depends on, the same scripted exchange is put
back from the twin transcript of another build and held to its own recorded answer
(``records.BRIDGES``), as subtest ``<record> <- <twin record>``.

Each unit of records gets a fresh device from the built-in profile named after the build
(index.json key = record ``build``), at ``time_scale=0``, on ``127.0.0.1`` or ``::1`` as the
build's ``ip_family`` says. A unit is a whole file, or, in ``*_reset.jsonl``, one
``os.reset.<variant>`` group, since each of those ran on a fresh process.

What is replayed widens by itself as groups are implemented (``records.select``);
``test_selection`` asserts a floor per file, and the counts are printed after the run.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pytest

from smpsim.config import load_profile
from smpsim.pytest_plugin import EmulatedDevice

from .compare import compare_response, decode, echo_answer
from .records import (
    HEADER_SIZE,
    OS_ECHO,
    OS_GROUP,
    SUMMARY_KEY,
    Header,
    Kind,
    Record,
    bridges_before,
    build_of,
    load_builds,
    load_transcript,
    plan,
    summarize,
)

UDP_FILES = ("native_sim_udp.jsonl", "native_sim_udp6.jsonl", "native_sim_udp_reset.jsonl")
"""Transcripts in scope: the UDP builds. Serial, shell and QEMU transcripts come later."""

MIN_REPLAYED = {
    "native_sim_udp.jsonl": 140,
    "native_sim_udp6.jsonl": 60,
    "native_sim_udp_reset.jsonl": 8,
}
"""Floor of replayed records per file with the groups implemented so far. It only rises."""

ANSWER_TIMEOUT_S = 5.0
"""How long to wait for each expected response datagram."""
SILENCE_S = 0.3
"""How long nothing must arrive when the real server sent nothing."""
EXTRA_GRACE_S = 0.02
"""After the expected datagrams: how long to listen for an extra one. All the frames of a unit
are sent back to back, so an extra one is already queued; a later straggler is still caught by
the check before the next request and by the silence check at the end of each unit."""
REBOOT_TIMEOUT_S = 10.0
"""How long a reset may take to bring the device back (instant at time_scale 0)."""


def host_for(info: dict[str, Any]) -> str:
    """The loopback address of the build's IP family."""
    hosts = {"ipv4": "127.0.0.1", "ipv6": "::1"}
    if info["transport"] != "udp" or info["ip_family"] not in hosts:
        pytest.fail(f"not a UDP build: transport {info['transport']!r}, "
                    f"ip_family {info['ip_family']!r}", pytrace=False)
    return hosts[info["ip_family"]]


class UdpClient:
    """A connected UDP socket to the device: send units, receive response datagrams."""

    def __init__(self, address: tuple[str, int]) -> None:
        host, port = address[:2]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.connect((host, port))

    def __enter__(self) -> UdpClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.sock.close()

    def send(self, unit: bytes) -> None:
        """One datagram (which may be empty)."""
        self.sock.send(unit)

    def receive(self, count: int, timeout: float) -> list[bytes]:
        """Up to ``count`` datagrams, giving up ``timeout`` seconds from now."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                got.append(self.sock.recv(65535))
            except TimeoutError:
                break
        return got

    def collect(self, wait: float) -> list[bytes]:
        """Every datagram arriving within ``wait`` seconds (0: only those already queued)."""
        got: list[bytes] = []
        deadline = time.monotonic() + wait
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.0))
            try:
                got.append(self.sock.recv(65535))
            except (TimeoutError, BlockingIOError):
                return got


def _short(data: bytes, limit: int = 48) -> str:
    text = data.hex()
    return text if len(data) <= limit else f"{data[:limit].hex()}… ({len(data)} bytes)"


def exchange(client: UdpClient, record: Record, expected: tuple[bytes, ...],
             decoded: tuple[dict[str, Any], ...]) -> None:
    """Send the record's unit; assert the answer is exactly ``expected`` (see compare.py)."""
    assert record.request is not None
    problems = []
    stray = client.collect(0)
    if stray:
        problems.append(f"{len(stray)} datagram(s) arrived after the previous exchange was "
                        f"complete: {[_short(d) for d in stray]}")
    client.send(record.request)
    if expected:
        got = client.receive(len(expected), ANSWER_TIMEOUT_S)
        got += client.collect(EXTRA_GRACE_S)
    else:
        got = client.collect(SILENCE_S)
    if len(got) != len(expected):
        problems.append(f"{len(got)} response datagram(s), expected {len(expected)}:\n"
                        f"  expected {[_short(d) for d in expected]}\n"
                        f"  got      {[_short(d) for d in got]}")
    frames = record.frames
    # A count mismatch is reported above; the frames that did arrive are still compared.
    for i, (want, info, actual) in enumerate(zip(expected, decoded, got, strict=False)):
        frame = frames[i] if i < len(frames) else None
        problems += [f"response {i}: {p}" for p in compare_response(want, info, actual, frame)]
    if problems:
        pytest.fail(f"{record.test_id} ({record.file}:{record.line}), request "
                    f"{_short(record.request)}:\n" + "\n".join(problems), pytrace=False)


def replay(client: UdpClient, record: Record) -> None:
    """Replay a record and compare with what the real server answered."""
    exchange(client, record, record.responses, record.decoded)


def replay_after_exit(device: EmulatedDevice, client: UdpClient, record: Record,
                      boots_at_start: int) -> None:
    """Replay a record sent after the real process had exited on reset: a documented deviation.

    The real native_sim process *exits* on reset (``sys_arch_reboot called with type 0.
    Exiting``), so the fixture saw silence and noted ``server_exited``. A board reboots and
    answers again, and that is what smpsim emulates. Asserted instead of the silence: the device
    rebooted exactly once since this unit started, and then answers the echo as a board does
    (:func:`echo_answer`, itself checked against every recorded echo by
    ``test_echo_stand_in_matches_recorded_echoes``).
    """
    assert record.request is not None and not record.responses
    frames = record.frames
    if len(frames) != 1 or frames[0].decided_by_header is not None or (
            frames[0].header.group, frames[0].header.cmd) != (OS_GROUP, OS_ECHO):
        pytest.fail(f"{record.test_id}: no stand-in expectation for a non-echo request sent "
                    f"after the process exited", pytrace=False)
    deadline = time.monotonic() + REBOOT_TIMEOUT_S
    state = device.state()
    while (state.boot_count <= boots_at_start or not state.online) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
        state = device.state()
    assert state.boot_count == boots_at_start + 1 and state.online, (
        f"{record.test_id}: the real process exited on reset; the device should have rebooted "
        f"once and be answering: boot_count {state.boot_count} (was {boots_at_start}), "
        f"online {state.online}")
    answer = echo_answer(record.request)
    info = {"header": Header.parse(answer).fields(), "payload": decode(answer[HEADER_SIZE:])}
    exchange(client, record, (answer,), (info,))


@pytest.mark.parametrize("build", sorted({"native_sim_udp", "native_sim_udp6"}))
def test_profile_matches_build(build: str) -> None:
    """The built-in profile is configured like the recorded build."""
    info = load_builds()[build]
    fw = load_profile(build).firmware
    assert sorted(fw.groups) == sorted(info["groups"])
    assert (fw.buf_size, fw.buf_count) == (info["buf_size"], info["buf_count"])
    assert all(build_of(f, load_builds()) == build for f in info["transcripts"])


@pytest.mark.parametrize("file", UDP_FILES)
def test_selection(file: str, request: pytest.FixtureRequest) -> None:
    """Enough of each file is replayed, so the selection cannot quietly select nothing."""
    transcript = load_transcript(file)
    kinds, line = summarize(transcript, plan(transcript))
    request.config.stash.setdefault(SUMMARY_KEY, {})[file] = line
    assert kinds[Kind.REPLAY] >= MIN_REPLAYED[file], line


def test_echo_stand_in_matches_recorded_echoes() -> None:
    """:func:`echo_answer` builds exactly what the real server sent for every short echo."""
    checked = 0
    for file in UDP_FILES:
        for record in load_transcript(file).records:
            frames = record.frames
            if len(frames) != 1 or len(record.responses) != 1:
                continue
            frame = frames[0]
            try:
                value = decode(frame.payload)
            except ValueError:
                continue
            if (frame.decided_by_header is None and (frame.header.group, frame.header.cmd)
                    == (OS_GROUP, OS_ECHO) and isinstance(value, dict) and value.keys() == {"d"}
                    and isinstance(value["d"], str) and len(value["d"].encode()) < 24):
                assert echo_answer(record.request or b"") == record.responses[0], record.test_id
                checked += 1
    assert checked >= 10


@pytest.mark.parametrize("file", UDP_FILES)
def test_replay(file: str, smp_device_factory: Callable[..., EmulatedDevice],
                subtests: pytest.Subtests) -> None:
    """Every selected record of ``file``, in order, one subtest each (see the module docstring)."""
    transcript = load_transcript(file)
    host = host_for(transcript.info)
    for unit in plan(transcript):
        if not any(True for _ in unit.replayed()):
            continue
        device = smp_device_factory(transcript.build, host=host, time_scale=0.0)
        boots_at_start = device.state().boot_count
        with UdpClient(device.address) as client:
            for record in unit.replayed():
                for twin in bridges_before(record):
                    with subtests.test(msg=f"{record.test_id} <- {twin.test_id}"):
                        replay(client, twin)
                with subtests.test(msg=record.test_id):
                    if record.server_exited and not record.responses:
                        replay_after_exit(device, client, record, boots_at_start)
                    else:
                        replay(client, record)
            late = client.collect(SILENCE_S)
        assert not late, f"{unit.label}: datagrams after the last exchange: " \
                         f"{[_short(d) for d in late]}"
