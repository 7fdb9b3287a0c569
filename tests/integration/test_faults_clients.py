"""Each fault family, driven through the plugin's device handle, with smpclient (and raw
sockets for the link faults a client library hides), asserting what a board would do.

Power is cut at 20 points of an upload and the upload resumes from the offset the board
reports; bits flipped in slot 1 make MCUboot refuse and erase it at the reset; dropped responses
make smpclient time out, and the retry changes nothing twice; a flash write error surfaces as
img_mgmt's FLASH_WRITE_FAILED; the next boot's crash makes MCUboot revert.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from smp.image_management import IMG_MGMT_ERR
from smpclient import SMPClient
from smpclient.exceptions import SMPUploadError
from smpclient.generics import success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import ResetWrite

from smpsim.device.mcu import Device
from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import BIN, PortUDP, echo_frame, parse_frame, smp_session, udp_socket, wait_until
from .serial_support import Port
from .test_dfu_smpclient import APP_110, FACTORY, flags, read_state

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
IMAGE = (IMAGES / "app-1.1.0.bin").read_bytes()
QUICK_S = 0.3
"""smpclient's timeout where an answer is expected to be lost."""


async def _upload(client: SMPClient, timeout_s: float = 2.0) -> list[int]:
    return [off async for off in client.upload(IMAGE, first_timeout_s=timeout_s,
                                               subsequent_timeout_s=timeout_s)]


def _upload_ops() -> int:
    """Flash operations of a whole upload of the image into a fresh board's slot 1."""
    with EmulatedDevice("nrf52840dk") as device:
        before = device.call(lambda d: d.flash.ops)
        smp_session(device.host, device.port, _upload)
        return device.call(lambda d: d.flash.ops) - before


UPLOAD_OPS = _upload_ops()
CUT_POINTS = sorted({max(1, round(UPLOAD_OPS * i / 21)) for i in range(1, 21)})


def _events(device: EmulatedDevice, kind: str) -> list[dict[str, Any]]:
    return [e for e in device.events(timeout_s=0.05) if e["kind"] == kind]


def _slot(device: EmulatedDevice, slot: int) -> dict[str, Any]:
    return device.slots()[slot]


def test_there_are_twenty_cut_points() -> None:
    assert len(CUT_POINTS) == 20, (UPLOAD_OPS, CUT_POINTS)


@pytest.mark.parametrize("cut", CUT_POINTS)
def test_power_cut_mid_upload_then_the_upload_resumes(smp_device: EmulatedDevice,
                                                      cut: int) -> None:
    smp_device.power_cut(before_op=cut)
    reached: list[int] = []

    async def until_the_power_goes(client: SMPClient) -> None:
        with pytest.raises(TimeoutError):
            async for off in client.upload(IMAGE, first_timeout_s=QUICK_S,
                                           subsequent_timeout_s=QUICK_S):
                reached.append(off)
    smp_session(smp_device.host, smp_device.port, until_the_power_goes)
    assert smp_device.status()["state"] == "off"
    assert not reached or reached[-1] < len(IMAGE)

    smp_device.power_on()
    offsets = smp_session(smp_device.host, smp_device.port, _upload)
    # The client follows the offsets the board reports; RAM went with the power, so the board
    # takes the upload from the start, and it ends with the whole image, valid.
    assert offsets == sorted(offsets) and offsets[-1] == len(IMAGE)
    slot1 = _slot(smp_device, 1)
    assert slot1["present"] and slot1["valid"] and slot1["version"] == "1.1.0"
    assert bytes.fromhex(slot1["hash"]) == APP_110


def test_bit_flips_in_slot_1_make_mcuboot_refuse_and_erase_it(
        smp_device: EmulatedDevice) -> None:
    async def upload_and_test(client: SMPClient) -> Any:
        await _upload(client)
        return await client.request(ImageStatesWrite(hash=APP_110, confirm=False))
    assert success(smp_session(smp_device.host, smp_device.port, upload_and_test))
    flipped = smp_device.faults.bit_flip(partition="slot1", offset=0x1000, length=0x1000,
                                         flips=3, seed=7)
    assert flipped["hits"] == 3
    slot1 = _slot(smp_device, 1)
    assert slot1["present"] and not slot1["valid"] and "hash" in slot1["validity"].lower()

    since = smp_device.status()["events"]
    answer = smp_session(smp_device.host, smp_device.port, lambda c: c.request(ResetWrite()))
    assert success(answer)
    wait_until(lambda: smp_device.state().online and smp_device.state().boot_count == 2,
               timeout_s=10)
    told = [e for e in smp_device.events(since, timeout_s=0.05) if e["kind"] == "image"]
    assert {"phase": "invalid", "slot": 1} .items() <= told[0].items()
    assert any(e["phase"] == "erased" and e["slot"] == 1 for e in told)
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed"))}
    assert smp_device.call(lambda d: _secondary(d).is_erased())


def _secondary(device: Device) -> Any:
    area = device.partitions.secondary(0)
    assert area is not None
    return area


def test_dropped_responses_time_out_and_the_retry_changes_nothing_twice(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    clean = smp_device_factory()
    smp_session(clean.host, clean.port, _upload)
    clean_writes = clean.call(lambda d: d.flash.writes)

    device = smp_device_factory()
    stopped: list[int] = []

    async def with_losses(client: SMPClient) -> list[int]:
        try:
            async for off in client.upload(IMAGE, subsequent_timeout_s=QUICK_S):
                stopped.append(off)
                if len(stopped) == 5:
                    device.faults.drop_responses(n=2)  # the 6th answer, and the retry's first
        except TimeoutError:
            pass
        for _ in range(3):  # what an application does: upload again; smpclient resumes
            try:
                return await _upload(client, timeout_s=QUICK_S)
            except TimeoutError:
                continue
        raise AssertionError("the upload never completed")
    offsets = smp_session(device.host, device.port, with_losses)
    assert offsets[0] > stopped[4]  # the board's offset: the lost chunk was written
    assert offsets[-1] == len(IMAGE)
    assert device.call(lambda d: d.flash.writes) == clean_writes  # nothing programmed twice
    assert [f["hits"] for f in device.faults.list()] == [2]

    writes = device.call(lambda d: d.flash.writes)

    async def test_twice(client: SMPClient) -> Any:
        device.faults.drop_responses(n=1)  # once connected: the answer to the state write
        with pytest.raises(TimeoutError):
            await client.request(ImageStatesWrite(hash=APP_110, confirm=False),
                                 timeout_s=QUICK_S)
        return await client.request(ImageStatesWrite(hash=APP_110, confirm=False))
    answer = smp_session(device.host, device.port, test_twice)
    assert success(answer)
    assert read_state(device)[1] == ("1.1.0", APP_110, flags("pending"))
    assert device.call(lambda d: d.flash.writes) - writes <= 3  # one trailer, written once
    assert _slot(device, 1)["trailer"]["magic"] == "good"


def test_flash_write_error_surfaces_as_zephyrs_error_code(smp_device: EmulatedDevice) -> None:
    fault = smp_device.faults.flash_write_error(n=1, partition="slot1")
    with pytest.raises(SMPUploadError) as info:
        smp_session(smp_device.host, smp_device.port, _upload)
    response = info.value.args[0]
    assert response.err.rc == IMG_MGMT_ERR.FLASH_WRITE_FAILED
    assert [f["hits"] for f in smp_device.faults.list()] == [1]
    assert _events(smp_device, "fault")[-1]["id"] == fault["id"]
    # The driver works again: the upload succeeds on the next try.
    offsets = smp_session(smp_device.host, smp_device.port, _upload)
    assert offsets[-1] == len(IMAGE) and _slot(smp_device, 1)["valid"]


def test_the_next_boot_crashes_and_mcuboot_reverts(smp_device: EmulatedDevice) -> None:
    async def upload_and_test(client: SMPClient) -> Any:
        await _upload(client)
        return await client.request(ImageStatesWrite(hash=APP_110, confirm=False))
    assert success(smp_session(smp_device.host, smp_device.port, upload_and_test))
    smp_device.faults.crash_next_boot()
    since = smp_device.status()["events"]
    smp_device.reset()  # 1.1.0 is swapped in, crashes, the board resets, MCUboot reverts
    wait_until(lambda: smp_device.state().online and smp_device.state().boot_count == 3,
               timeout_s=10)
    told = [(e["kind"], e.get("phase"), e.get("swap_type"))
            for e in smp_device.events(since, timeout_s=0.05)
            if e["kind"] in ("swap", "app") and e.get("phase") != "progress"]
    assert told == [("swap", "start", "test"), ("swap", "done", None), ("app", "fault", None),
                    ("app", "crash", None), ("swap", "start", "revert"),
                    ("swap", "done", None), ("app", "running", None)]
    assert read_state(smp_device) == {0: ("1.0.0", FACTORY, flags("active", "confirmed")),
                                      1: ("1.1.0", APP_110, flags())}


def test_power_cut_at_a_point_of_the_swap_then_mcuboot_finishes_it(
        smp_device: EmulatedDevice) -> None:
    async def upload_and_test(client: SMPClient) -> Any:
        await _upload(client)
        return await client.request(ImageStatesWrite(hash=APP_110, confirm=False))
    assert success(smp_session(smp_device.host, smp_device.port, upload_and_test))
    smp_device.power_cut(at_swap_percent=40)
    since = smp_device.status()["events"]
    smp_device.act("reset")
    assert smp_device.status()["state"] == "off"
    smp_device.power_on()
    swaps = [e for e in smp_device.events(since, timeout_s=0.05) if e["kind"] == "swap"
             and e["phase"] in ("start", "done")]
    assert [(e["phase"], e.get("resumed")) for e in swaps] == [
        ("start", False), ("start", True), ("done", None)]
    total, rest = swaps[0]["ops_total"], swaps[1]["ops_total"]
    assert total > 100
    # The cut fell before operation 40 % of the way; MCUboot resumed from the status area.
    assert abs(rest - (total - round(total * 0.4))) <= 3
    assert swaps[2]["ops_done"] == swaps[2]["ops_total"] == rest
    assert read_state(smp_device) == {0: ("1.1.0", APP_110, flags("active")),
                                      1: ("1.0.0", FACTORY, flags("confirmed"))}


def test_a_brownout_at_the_reset_interrupts_the_swap_which_mcuboot_finishes(
        smp_device: EmulatedDevice) -> None:
    async def upload_and_test(client: SMPClient) -> Any:
        await _upload(client)
        return await client.request(ImageStatesWrite(hash=APP_110, confirm=False))
    assert success(smp_session(smp_device.host, smp_device.port, upload_and_test))
    smp_device.faults.brownout(seed=5)
    since = smp_device.status()["events"]
    answer = smp_session(smp_device.host, smp_device.port, lambda c: c.request(ResetWrite()))
    assert success(answer)
    wait_until(lambda: smp_device.state().online and smp_device.state().boot_count == 3,
               timeout_s=10)  # the reset's boot, cut short; the boot when power came back
    told = list(smp_device.events(since, timeout_s=0.05))
    states = [e["state"] for e in told if e["kind"] == "board"]
    assert states == ["booting", "off", "booting", "online"]
    assert any(e["kind"] == "fault" and "brown-out" in e["what"] for e in told)
    assert [e.get("resumed") for e in told if e["kind"] == "swap" and e["phase"] == "start"] \
        == [False, True]
    assert read_state(smp_device) == {0: ("1.1.0", APP_110, flags("active")),
                                      1: ("1.0.0", FACTORY, flags("confirmed"))}


# --- link faults on raw UDP: what a client library would hide --------------------------------

def _echo(sock: Any, seq: int, text: str = "hi") -> None:
    sock.send(echo_frame(seq, text))


def _answers(sock: Any, wait_s: float = 0.3) -> list[tuple[int, Any]]:
    sock.settimeout(wait_s)
    found = []
    while True:
        try:
            frame = sock.recv(4096)
        except TimeoutError:
            return found
        header, body = parse_frame(frame)
        found.append((header["seq"], body))


def test_delay_duplicate_and_reorder(smp_device: EmulatedDevice) -> None:
    with udp_socket(smp_device.address) as sock:
        smp_device.faults.delay(ms=150, direction="responses")
        start = time.monotonic()
        _echo(sock, 1)
        sock.settimeout(2)
        sock.recv(4096)
        assert time.monotonic() - start >= 0.15
        smp_device.faults.clear()

        smp_device.faults.duplicate(n=1, direction="responses")
        _echo(sock, 2)
        assert [seq for seq, _ in _answers(sock)] == [2, 2]

        smp_device.faults.reorder(n=1, delay_ms=200)
        _echo(sock, 3)
        _echo(sock, 4)
        assert [seq for seq, _ in _answers(sock, 0.5)] == [4, 3]


def test_corrupt_and_truncate(smp_device: EmulatedDevice) -> None:
    with udp_socket(smp_device.address) as sock:
        sock.settimeout(2)
        _echo(sock, 0, "hello")
        whole = sock.recv(4096)
        smp_device.faults.truncate(n=1, nbytes=3, direction="responses")
        _echo(sock, 1, "hello")
        frame = sock.recv(4096)
        assert frame[8:] == whole[8:-3]  # same answer (but its seq), cut short
        assert len(frame) == len(whole) - 3  # the answer lost its last bytes on the way
        smp_device.faults.corrupt(n=1, direction="requests", nbytes=1, seed=3)
        _echo(sock, 2, "hello")
        got = _answers(sock)
        assert got != [(2, {"r": "hello"})]  # the board answered what it received, not the echo
        _echo(sock, 3, "hello")
        assert _answers(sock) == [(3, {"r": "hello"})]


def test_deaf_then_hearing_again(smp_device: EmulatedDevice) -> None:
    with udp_socket(smp_device.address) as sock:
        smp_device.faults.deaf(0.4)
        _echo(sock, 1)
        assert _answers(sock, 0.2) == []
        time.sleep(0.3)
        _echo(sock, 2)
        assert _answers(sock) == [(2, {"r": "hi"})]


def test_faults_are_checked_and_nothing_changes_on_refusal(smp_device: EmulatedDevice) -> None:
    for spec in ({"family": "link"}, {"family": "link", "kind": "drop_requests", "count": 0},
                 {"family": "flash", "kind": "bit_flip", "partition": "nope"},
                 {"family": "link", "kind": "delay", "delay_ms": -1},
                 {"family": "app", "kind": "crash", "bogus": 1}):
        with pytest.raises(ValueError):
            smp_device.faults.add_spec(spec)
    assert smp_device.faults.list() == []
    with udp_socket(smp_device.address) as sock:
        _echo(sock, 9)
        assert _answers(sock) == [(9, {"r": "hi"})]


def test_the_plugin_drives_smpclient_while_faults_come_and_go(
        smp_device: EmulatedDevice) -> None:
    """smpclient in the test's own loop, faults from the same thread: the board's thread
    takes both."""
    async def main() -> list[bool]:
        async with SMPClient(PortUDP(smp_device.port), smp_device.host,
                             timeout_s=QUICK_S) as client:
            seen = []
            for lose in (False, True, False):
                if lose:
                    smp_device.faults.drop_requests(n=1)
                try:
                    seen.append(success(await client.request(ImageStatesRead())))
                except TimeoutError:
                    seen.append(False)
            return seen
    assert asyncio.run(main()) == [True, False, True]


def test_serial_line_noise_makes_zephyr_drop_frames_then_smpmgr_gets_through(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    board = smp_device_factory("native_sim_serial_bigrx", serial=True)
    assert board.serial_path is not None
    board.faults.noise(probability=0.05, direction="requests", seed=11)
    with Port(board.serial_path) as port:
        for seq in range(5):
            port.send(echo_frame(seq, "x" * 40))
        assert port.quiet(0.3) == b""  # every line failed its CRC: Zephyr says nothing
    noise = board.faults.list()[0]
    assert noise["hits"] > 5
    board.faults.clear()
    done = subprocess.run([str(BIN / "smpmgr"), "--port", board.serial_path, "--timeout", "2",
                           "os", "echo", "clean line"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and "clean line" in done.stdout, done.stdout + done.stderr


def test_the_recovery_button_from_the_control_plane(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    board = smp_device_factory("nrf52840dk", serial=True)
    assert board.act("button", held=True)["held"] is True
    board.act("reset")
    assert board.status()["state"] == "recovery" and board.status()["button_held"]
    board.act("button", held=False)
    board.act("reset")
    assert board.status()["state"] == "online"
    with pytest.raises(ValueError, match="held"):
        board.act("button", held="yes")
