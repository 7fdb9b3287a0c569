"""Real SMP clients over the board's serial line (a PTY): smpclient (``Auto()`` sizing from the
MCUmgr params), the smpmgr CLI, mcumgr-toolkit and mcumgr-client-wrapper (SMP v1). Instant time
(``time_scale=0``)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead
from smpclient.transport.serial import Auto, SMPSerialTransport

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import BIN, wait_until
from .serial_support import Port, run_toolkit_serial, run_wrapper

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
HASH_ONLY_APP = IMAGES / "app-1.1.0-hashonly.bin"
"""Version 1.1.0 for hash-only MCUboot builds (qemu_cortex_m0_img)."""


def serial_board(factory: Callable[..., EmulatedDevice], profile: str,
                 **options: Any) -> tuple[EmulatedDevice, str]:
    device = factory(profile, serial=True, **options)
    assert device.serial_path is not None
    return device, device.serial_path


@pytest.mark.parametrize(("profile", "buf_size"), [
    ("native_sim_serial_bigrx", 384),   # SMP alone on the PTY
    ("qemu_cortex_m0_img", 384),        # the console (MCUboot, the app's log) in between
    ("native_sim_serial_buf2048", 2048),
])
def test_smpclient_auto_sizing(smp_device_factory: Callable[..., EmulatedDevice], profile: str,
                               buf_size: int) -> None:
    _, path = serial_board(smp_device_factory, profile)

    async def session() -> None:
        transport = SMPSerialTransport(Auto())
        async with SMPClient(transport, path, timeout_s=3.0) as client:
            # SMPClient read the params on connect, and sized its messages from them.
            assert transport.max_unencoded_size == buf_size - 4
            params = await client.request(MCUMgrParametersRead())
            assert success(params)
            assert (params.buf_size, params.buf_count) == (buf_size, 4)
            echo = await client.request(EchoWrite(d="hello serial"))
            assert success(echo) and echo.r == "hello serial"
            # The largest echo that fits: request frame buf_size - 4, over many lines.
            text = "z" * (buf_size - 4 - 14)
            assert len(bytes(EchoWrite(d=text))) == buf_size - 4
            big = await client.request(EchoWrite(d=text))
            assert success(big) and big.r == text
            again = await client.request(EchoWrite(d="after"))
            assert success(again) and again.r == "after"

    asyncio.run(session())


def smpmgr(path: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smpmgr"), "--port", path, "--timeout", "5", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_smpmgr_echo(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    _, path = serial_board(smp_device_factory, "qemu_cortex_m0_img")
    result = smpmgr(path, "os", "echo", "hi")
    assert result.returncode == 0, result.stderr
    assert "r='hi'" in result.stdout and "Error" not in result.stdout


def test_smpmgr_image_upload_and_state_read(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    _, path = serial_board(smp_device_factory, "qemu_cortex_m0_img")
    upload = smpmgr(path, "image", "upload", str(HASH_ONLY_APP), "--slot", "1")
    assert upload.returncode == 0, upload.stdout + upload.stderr
    state = smpmgr(path, "image", "state-read")
    assert state.returncode == 0, state.stderr
    slots = re.findall(r"slot=(\d),\s+version='([\d.]+)'", state.stdout)
    assert slots == [("0", "1.0.0"), ("1", "1.1.0")], state.stdout


def test_mcumgr_toolkit_serial(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    _, path = serial_board(smp_device_factory, "nrf52840dk")
    echo, params, state, big = run_toolkit_serial(
        path, ["os_echo", "over serial"], ["os_mcumgr_parameters"], ["image_get_state"],
        ["os_echo", "y" * 1500])
    assert echo == "over serial"
    assert params == {"buf_size": 2475, "buf_count": 4}
    assert [(s["slot"], s["version"], s["active"]) for s in state] == [(0, "1.0.0", True)]
    assert big == "y" * 1500


def test_mcumgr_client_wrapper_v1_dfu(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """SMP v1 headers: list, upload, test, reset; after the reset MCUboot runs the test image."""
    device, path = serial_board(smp_device_factory, "qemu_cortex_m0_img")
    before, _, after_upload = run_wrapper(path, ["list"], ["upload", str(HASH_ONLY_APP), 1],
                                          ["list"])
    assert [(i["slot"], i["version"]) for i in before] == [(0, "1.0.0")]
    assert [(i["slot"], i["version"], i["pending"]) for i in after_upload] == \
        [(0, "1.0.0", False), (1, "1.1.0", False)]
    new_hash = after_upload[1]["hash"]
    _, listed, _ = run_wrapper(path, ["test", new_hash, False], ["list"], ["reset"])
    assert [(i["slot"], i["pending"]) for i in listed] == [(0, False), (1, True)]
    wait_until(lambda: device.state().boot_count == 2 and device.state().online, timeout_s=10)
    [swapped] = run_wrapper(path, ["list"])
    assert [(i["slot"], i["version"], i["active"], i["confirmed"]) for i in swapped] == \
        [(0, "1.1.0", True, False), (1, "1.0.0", False, True)]


def test_console_text_between_frames_does_not_disturb_clients(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """The board's boot log sits unread in the port when a client opens it without flushing;
    clients skip it, as on a board's shared UART."""
    _, path = serial_board(smp_device_factory, "qemu_cortex_m0_img")
    with Port(path, flush=False) as port:
        port.wait_for(lambda: b"smp_sample: build time" in port.received)
        assert "*** Booting MCUboot" in port.text()
    [echo] = run_toolkit_serial(path, ["os_echo", "fine"])
    assert echo == "fine"
