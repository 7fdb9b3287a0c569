"""Real time (``time_scale=1``) on nrf52840dk: 250 ms from the reset answer to the reboot, then
350 ms of boot during which the board is silent. Only facts that hold with wide margins are
asserted: order, silence, lower bounds well under the emulated durations."""

from __future__ import annotations

import socket
import time

import pytest

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import RESET, WRITE, WRITE_RSP, echo_frame, parse_frame, smp_frame, udp_socket
from .itsupport import wait_until as wait_for

pytestmark = pytest.mark.smpsim(profile="nrf52840dk", time_scale=1.0)

RESET_MS = 0.250
BOOT_S = 0.350


def answer_to(sock: socket.socket, seq: int, window_s: float) -> dict | None:
    """The body answering ``seq`` within ``window_s``, or None; answers to other seqs are
    skipped (late answers to earlier probes)."""
    deadline = time.monotonic() + window_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            header, body = parse_frame(sock.recv(4096))
        except TimeoutError:
            return None
        if header["seq"] == seq:
            return body
    return None


def reset(sock: socket.socket, seq: int) -> float:
    """Send os reset, wait for its answer; the monotonic time the answer arrived."""
    sock.send(smp_frame(WRITE, *RESET, seq, {}))
    header, body = parse_frame(sock.recv(4096))
    assert (header["op"], header["seq"], body) == (WRITE_RSP, seq, {})
    return time.monotonic()


def test_config_is_what_this_file_assumes(smp_device: EmulatedDevice) -> None:
    assert smp_device.profile.firmware.os.reset_ms / 1000 == RESET_MS
    assert smp_device.profile.board.boot_time_ms / 1000 == BOOT_S


def test_silent_while_booting_then_answers(smp_device: EmulatedDevice) -> None:
    with udp_socket(smp_device.address) as sock:
        answered_at = reset(sock, seq=1)
        # Right after the answer the board still runs: it answers for ~250 ms.
        sock.send(echo_frame(2, "still up"))
        assert answer_to(sock, 2, window_s=2.0) == {"r": "still up"}
        # Then it reboots: wait until the model says so, and probe while it boots.
        went_down = wait_for(lambda: not smp_device.state().online, timeout_s=5)
        sock.send(echo_frame(3, "booting"))
        came_up = wait_for(lambda: smp_device.state().online, timeout_s=5)
        # The probe sent while booting is dropped, not queued: no answer, even later.
        assert answer_to(sock, 3, window_s=0.3) is None
        sock.send(echo_frame(4, "up again"))
        assert answer_to(sock, 4, window_s=2.0) == {"r": "up again"}
    assert went_down - answered_at > RESET_MS - 0.1
    assert came_up - went_down > BOOT_S - 0.15
    state = smp_device.state()
    assert state.boot_count == 2
    assert state.uptime_s < 5


def test_client_sees_the_boot_as_silence(smp_device: EmulatedDevice) -> None:
    """Only what a client sees: echo probes every ~20 ms until answers stop, then start again."""
    with udp_socket(smp_device.address) as sock:
        answered_at = reset(sock, seq=1)
        seq, silent_from, back_at = 1, None, None
        deadline = answered_at + 5
        while time.monotonic() < deadline:
            seq += 1
            sent = time.monotonic()
            sock.send(echo_frame(seq, "probe"))
            answered = answer_to(sock, seq, window_s=0.05) is not None
            if not answered and silent_from is None:
                silent_from = sent
            elif answered and silent_from is not None:
                back_at = sent
                break
            time.sleep(max(0.0, 0.02 - (time.monotonic() - sent)))
    assert silent_from is not None, "the board never went silent"
    assert back_at is not None, "the board never answered again"
    assert silent_from - answered_at > RESET_MS - 0.1  # kept answering through the delay
    assert back_at - silent_from > BOOT_S - 0.15  # silent for about the boot time
    assert smp_device.state().boot_count == 2


def test_repeated_reset_request_reboots_once(smp_device: EmulatedDevice) -> None:
    # A client that retransmits (mcumgr-toolkit) may send reset twice. Zephyr restarts one
    # k_timer, so the board reboots once, 250 ms after the last request.
    with udp_socket(smp_device.address) as sock:
        first = reset(sock, seq=1)
        time.sleep(0.05)
        reset(sock, seq=1)
        wait_for(lambda: not smp_device.state().online, timeout_s=5)
        wait_for(lambda: smp_device.state().online, timeout_s=5)
        time.sleep(max(0.0, 2 * (RESET_MS + BOOT_S) - (time.monotonic() - first)))
        sock.send(echo_frame(2, "once"))
        assert answer_to(sock, 2, window_s=2.0) == {"r": "once"}
    assert smp_device.state().boot_count == 2
