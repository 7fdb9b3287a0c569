"""SMP over UDP on IPv6 loopback, as the native_sim ``udp6`` build serves it."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, TaskStatisticsRead

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import run_toolkit, smp_session

pytestmark = pytest.mark.smpsim(profile="native_sim_udp6", host="::1")


def test_device_is_on_ipv6_loopback(smp_device: EmulatedDevice) -> None:
    assert smp_device.host == "::1"
    assert socket.getaddrinfo(*smp_device.address)[0][0] == socket.AF_INET6


def test_smpclient_over_ipv6(smp_device: EmulatedDevice) -> None:
    async def body(client: SMPClient) -> Any:
        return (await client.request(MCUMgrParametersRead()),
                await client.request(EchoWrite(d="over v6")),
                await client.request(TaskStatisticsRead()))
    params, echo, tasks = smp_session(smp_device.host, smp_device.port, body)
    assert success(params) and (params.buf_size, params.buf_count) == (2048, 2)
    assert echo.r == "over v6"
    # The udp6 build keys taskstat by priority; duplicate keys collapse in a Python dict.
    assert set(tasks.tasks) == {str(t.prio) for t in smp_device.profile.firmware.threads}
    assert all(task.stksiz is None for task in tasks.tasks.values())  # no stack info


def test_mcumgr_toolkit_over_ipv6(smp_device: EmulatedDevice) -> None:
    echo, params, no_rtc = run_toolkit(smp_device.host, smp_device.port,
                                       ["os_echo", "v6"], ["os_mcumgr_parameters"],
                                       ["os_get_datetime"])
    assert echo == "v6"
    assert (params["buf_size"], params["buf_count"]) == (2048, 2)
    # The udp6 build leaves datetime out of the os group: {"rc": 8}, not supported.
    assert "MGMT_ERR_ENOTSUP" in no_rtc["error"]
