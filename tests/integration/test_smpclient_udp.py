"""smpclient 7.3.0 (asyncio library, pydantic models from ``smp``) over real UDP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from smp.error import MGMT_ERR
from smp.header import Version
from smp.os_management import OS_MGMT_RET_RC
from smpclient import SMPClient
from smpclient.generics import error_v1, error_v2, success
from smpclient.requests.image_management import ImageStatesRead
from smpclient.requests.os_management import (
    BootloaderInformationRead,
    DateTimeRead,
    DateTimeWrite,
    EchoWrite,
    MCUMgrParametersRead,
    OSApplicationInfoRead,
    ResetWrite,
    TaskStatisticsRead,
)

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import smp_session, wait_until


def session(device: EmulatedDevice, body: Callable[[SMPClient], Awaitable[Any]]) -> Any:
    return smp_session(device.host, device.port, body)


def test_echo(smp_device: EmulatedDevice) -> None:
    async def body(client: SMPClient) -> Any:
        return [await client.request(EchoWrite(d=text)) for text in ("hello", "", "äöü ✓")]
    answers = session(smp_device, body)
    for answer, text in zip(answers, ("hello", "", "äöü ✓"), strict=True):
        assert success(answer), answer
        assert answer.r == text
        assert answer.header.version == Version.V2


def test_mcumgr_params(smp_device: EmulatedDevice) -> None:
    answer = session(smp_device, lambda c: c.request(MCUMgrParametersRead()))
    assert success(answer), answer
    assert (answer.buf_size, answer.buf_count) == (2475, 4)  # nrf52840dk: BLE overlay buffers


@pytest.mark.smpsim(profile="native_sim_udp")
def test_mcumgr_params_follow_profile(smp_device: EmulatedDevice) -> None:
    answer = session(smp_device, lambda c: c.request(MCUMgrParametersRead()))
    assert success(answer), answer
    assert (answer.buf_size, answer.buf_count) == (2048, 2)


def test_taskstat(smp_device: EmulatedDevice) -> None:
    answer = session(smp_device, lambda c: c.request(TaskStatisticsRead()))
    assert success(answer), answer
    threads = smp_device.profile.firmware.threads
    assert list(answer.tasks) == [t.name for t in threads]
    for tid, thread in enumerate(threads):
        task = answer.tasks[thread.name]
        assert (task.prio, task.tid, task.state) == (thread.prio, tid, thread.state)
        # Zephyr reports stack figures in 32-bit words.
        assert (task.stksiz * 4, task.stkuse * 4) == (thread.stack_size, thread.stack_used)


def test_os_application_info(smp_device: EmulatedDevice) -> None:
    async def body(client: SMPClient) -> Any:
        return [await client.request(OSApplicationInfoRead(format=f))
                for f in (None, "a", "iv", "sn")]
    default, everything, two, sn = session(smp_device, body)
    assert default.output == "Zephyr"
    assert everything.output == ("Zephyr Zephyr v4.4.0 4.4.0 Sat Nov 21 12:00:00 2026 arm "
                                 "cortex-m4 nrf52840dk/nrf52840 Zephyr")
    assert two.output == "4.4.0 nrf52840dk/nrf52840"  # fixed order, not the format's order
    assert sn.output == "Zephyr Zephyr"


def test_os_application_info_bad_format_is_error_v2(smp_device: EmulatedDevice) -> None:
    answer = session(smp_device, lambda c: c.request(OSApplicationInfoRead(format="sz")))
    assert error_v2(answer), answer
    assert answer.err.group == 0
    assert answer.err.rc == OS_MGMT_RET_RC.INVALID_FORMAT


def test_v1_request_gets_v1_answers(smp_device: EmulatedDevice) -> None:
    async def body(client: SMPClient) -> Any:
        echo = await client.request(EchoWrite(d="old", version=Version.V1))
        bad = await client.request(OSApplicationInfoRead(format="z", version=Version.V1))
        return echo, bad
    echo, bad = session(smp_device, body)
    assert success(echo), echo
    assert echo.r == "old"
    assert echo.header.version == Version.V1
    # A group error is translated to a generic rc for v1: INVALID_FORMAT -> EINVAL.
    assert error_v1(bad), bad
    assert bad.header.version == Version.V1
    assert bad.rc == MGMT_ERR.EINVAL


@pytest.mark.smpsim(profile="native_sim_udp")
def test_group_not_built_is_v1_enotsup_even_for_v2(smp_device: EmulatedDevice) -> None:
    answer = session(smp_device, lambda c: c.request(ImageStatesRead()))
    assert error_v1(answer), answer
    assert answer.header.version == Version.V2
    assert answer.rc == MGMT_ERR.ENOTSUP


def test_bootloader_info(smp_device: EmulatedDevice) -> None:
    answer = session(smp_device, lambda c: c.request(BootloaderInformationRead()))
    assert success(answer), answer
    assert answer.bootloader == "MCUboot"


def test_datetime_set_then_get(smp_device: EmulatedDevice) -> None:
    async def body(client: SMPClient) -> Any:
        before = await client.request(DateTimeRead())
        bad = await client.request(DateTimeWrite(datetime="yesterday"))
        wrote = await client.request(DateTimeWrite(datetime="2026-11-21T12:34:56"))
        after = await client.request(DateTimeRead())
        return before, bad, wrote, after
    before, bad, wrote, after = session(smp_device, body)
    assert error_v2(before), before  # the RTC was never set
    assert before.err.rc == OS_MGMT_RET_RC.RTC_NOT_SET
    assert error_v1(bad), bad
    assert bad.rc == MGMT_ERR.EINVAL
    assert success(wrote), wrote
    assert success(after), after
    assert after.datetime == "2026-11-21T12:34:56"  # instant time: the clock stands still


def test_reset_then_next_request_succeeds(smp_device: EmulatedDevice) -> None:
    assert smp_device.state().boot_count == 1

    async def body(client: SMPClient) -> Any:
        reset = await client.request(ResetWrite())
        wait_until(lambda: smp_device.state().boot_count == 2 and smp_device.state().online)
        again = await client.request(EchoWrite(d="back"))
        return reset, again
    reset, again = session(smp_device, body)
    assert success(reset), reset
    assert success(again), again
    assert again.r == "back"
    # A fresh connection works as well, and nothing rebooted twice.
    fresh = session(smp_device, lambda c: c.request(EchoWrite(d="fresh")))
    assert fresh.r == "fresh"
    assert smp_device.state().boot_count == 2


def test_reset_boot_mode_enters_serial_recovery_once(smp_device: EmulatedDevice) -> None:
    """Boot mode 1 makes MCUboot stay in serial recovery, which serves its UART only: UDP is
    silent until the next reset, which boots the application (the mode was used once)."""
    answer = session(smp_device, lambda c: c.request(ResetWrite(boot_mode=1)))
    assert success(answer), answer
    wait_until(lambda: smp_device.state().boot_count == 2 and smp_device.in_recovery())
    assert "I: Enter the serial recovery mode" in smp_device.console
    assert smp_device.state().boot_mode == 0  # consumed by MCUboot
    smp_device.reset()
    assert not smp_device.in_recovery()
    assert session(smp_device, lambda c: c.request(EchoWrite(d="app"))).r == "app"
