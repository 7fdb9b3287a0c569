"""The smpmgr 0.19.1 CLI in a subprocess. Its UDP port is fixed at 1337, so every device here
lives on its own 127.0.0.N:1337. smpmgr exits 0 on most SMP errors: assert on its output."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import BIN, device_on_port_1337, wait_until


def smpmgr(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smpmgr"), "--ip", host, "--timeout", "5", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_os_echo(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory)
    result = smpmgr(device.host, "os", "echo", "hello")
    assert result.returncode == 0, result.stderr
    assert "EchoWriteResponse(" in result.stdout
    assert "r='hello'" in result.stdout
    assert "Error" not in result.stdout


def test_os_reset(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory)
    result = smpmgr(device.host, "os", "reset")
    assert result.returncode == 0, result.stderr
    assert "ResetWriteResponse(" in result.stdout
    assert "Error" not in result.stdout
    wait_until(lambda: device.state().boot_count == 2)
    # The board is back: the next process talks to it at once.
    again = smpmgr(device.host, "os", "echo", "after reset")
    assert "r='after reset'" in again.stdout
    assert device.state().boot_count == 2


def test_group_not_built_answers_enotsup(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    # native_sim_udp has no img group: real Zephyr answers v1-style {"rc": 8}, exit code 0.
    device = device_on_port_1337(smp_device_factory, "native_sim_udp")
    result = smpmgr(device.host, "image", "state-read")
    assert result.returncode == 0, result.stderr
    assert "ImageManagementErrorV1(" in result.stdout
    assert "rc=<MGMT_ERR.ENOTSUP: 8>" in result.stdout


def test_two_boards_side_by_side(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    a = device_on_port_1337(smp_device_factory)
    b = device_on_port_1337(smp_device_factory)
    assert a.host != b.host
    smpmgr(a.host, "os", "reset")
    wait_until(lambda: a.state().boot_count == 2)
    assert b.state().boot_count == 1
    assert "r='b'" in smpmgr(b.host, "os", "echo", "b").stdout
