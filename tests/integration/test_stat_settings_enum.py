"""The statistics, settings and enumeration groups with real clients over real UDP: the smpmgr
0.19.1 CLI, mcumgr-toolkit 0.20.0 (in a child process) and smpclient 7.3.0."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from smp.enumeration_management import ENUM_MGMT_ERR
from smp.settings_management import SETTINGS_MGMT_ERR
from smp.statistics_management import STAT_MGMT_ERR
from smpclient import SMPClient
from smpclient.generics import error_v2, success
from smpclient.requests.enumeration_management import (
    CountSupportedGroups,
    GroupDetails,
    GroupId,
    ListSupportedGroups,
)
from smpclient.requests.settings_management import (
    CommitSettings,
    DeleteSetting,
    LoadSettings,
    ReadSetting,
    SaveSettings,
    WriteSetting,
)
from smpclient.requests.statistics_management import GroupData, ListOfGroups

from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import BIN, device_on_port_1337, run_toolkit, smp_session, wait_until

NRF_GROUPS = [10, 8, 1, 0, 3, 9, 2, 63]
"""The default board's groups in registration order."""


def smpmgr(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smpmgr"), "--ip", host, "--timeout", "5", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def advance(device: EmulatedDevice, seconds: float) -> None:
    """Let emulated time pass on the device (instant mode)."""
    device.call(lambda d: d.clock.advance(seconds))


def session(device: EmulatedDevice, body: Callable[[SMPClient], Any]) -> Any:
    return smp_session(device.host, device.port, body)


# ----------------------------------------------------------------------------- smpmgr CLI


def test_smpmgr_statistics(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory, "native_sim_udp")
    listed = smpmgr(device.host, "statistics", "list")
    assert listed.returncode == 0, listed.stderr
    for name in ("flash_sim_stats", "flash_sim_thresholds", "smp_svr_stats"):
        assert name in listed.stdout
    advance(device, 42.5)
    got = smpmgr(device.host, "statistics", "get", "smp_svr_stats")
    assert got.returncode == 0, got.stderr
    assert "GroupDataResponse(" in got.stdout
    assert "fields={'ticks': 42}" in got.stdout
    missing = smpmgr(device.host, "statistics", "get", "no_such_group")
    assert "rc=<STAT_MGMT_ERR.ERR_INVALID_STAT_NAME: 3>" in missing.stdout


def test_smpmgr_enum(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    device = device_on_port_1337(smp_device_factory)
    groups = smpmgr(device.host, "enum", "get-supported-groups")
    assert groups.returncode == 0, groups.stderr
    assert "ListOfGroupsResponse(" in groups.stdout
    for name in ("ENUM_MANAGEMENT: 10", "FILE_MANAGEMENT: 8", "IMAGE_MANAGEMENT: 1",
                 "OS_MANAGEMENT: 0", "SETTINGS_MANAGEMENT: 3", "SHELL_MANAGEMENT: 9",
                 "STATISTICS_MANAGEMENT: 2", "ZEPHYR_MANAGEMENT: 63"):
        assert name in groups.stdout
    # registration order, not numeric
    listed_ids = groups.stdout[groups.stdout.index("groups=("):]
    positions = [listed_ids.index(f": {g}>") for g in NRF_GROUPS]
    assert positions == sorted(positions)
    details = smpmgr(device.host, "enum", "get-group-details", "0", "3", "99")
    assert details.returncode == 0, details.stderr
    assert "GroupDetailsResponse(" in details.stdout
    assert "name='os mgmt',\n            handlers=9" in details.stdout
    assert "name='settings mgmt',\n            handlers=4" in details.stdout
    assert "img mgmt" not in details.stdout


# ----------------------------------------------------------------------------- mcumgr-toolkit


def test_toolkit_stats_and_enum(smp_device: EmulatedDevice) -> None:
    advance(smp_device, 7.2)
    groups, data, missing, count, ids, single, walk, details = run_toolkit(
        smp_device.host, smp_device.port,
        ["stats_list_groups"], ["stats_get_group_data", "smp_svr_stats"],
        ["stats_get_group_data", "nope"], ["enum_get_group_count"], ["enum_get_group_ids"],
        ["enum_get_group_id", 2], ["enum_iter_group_ids"], ["enum_get_group_details", [2, 63]])
    assert groups == ["smp_svr_stats"]
    assert data == {"ticks": 7}
    assert "STAT_MGMT_ERR_INVALID_STAT_NAME" in missing["error"]
    assert count == 8
    assert ids == NRF_GROUPS
    assert single == 1
    assert walk == NRF_GROUPS  # index by index until "end"
    assert [(d["group"], d["name"], d["handlers"]) for d in details] == [
        (2, "stat mgmt", 2), (63, "zephyr basic mgmt", 1)]


def test_toolkit_settings_round_trip_across_a_reset(smp_device: EmulatedDevice) -> None:
    port, host = smp_device.port, smp_device.host
    (default, write, read, short, save, missing, not_supported, refused) = run_toolkit(
        host, port,
        ["settings_read", "app/greeting"], ["settings_write", "app/greeting", b"hi".hex()],
        ["settings_read", "app/greeting"], ["settings_read_ext", "id/serial", 3],
        ["settings_save"], ["settings_read", "nosuch/key"],
        ["settings_read", "secret/token"], ["settings_delete", "id/serial"])
    assert default == b"hello".hex()
    assert write is None and save is None
    assert read == b"hi".hex()
    assert short == {"value": b"SMP".hex(), "max_size": None}
    assert "SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND" in missing["error"]
    assert "SETTINGS_MGMT_ERR_READ_NOT_SUPPORTED" in not_supported["error"]
    assert "SETTINGS_MGMT_ERR_DELETE_NOT_SUPPORTED" in refused["error"]
    reset = run_toolkit(host, port, ["os_system_reset", False, None])
    assert reset == [None]
    wait_until(lambda: smp_device.state().boot_count == 2)
    after, delete, commit, load = run_toolkit(
        host, port, ["settings_read", "app/greeting"], ["settings_delete", "app/greeting"],
        ["settings_commit"], ["settings_load"])
    assert after == b"hi".hex()  # saved before the reset
    assert delete is None and commit is None and load is None


@pytest.mark.smpsim(profile="native_sim_udp")
def test_toolkit_settings_without_handlers(smp_device: EmulatedDevice) -> None:
    read, save, commit = run_toolkit(smp_device.host, smp_device.port,
                                     ["settings_read", "foo/bar"], ["settings_save"],
                                     ["settings_commit"])
    assert "SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND" in read["error"]
    assert "error code" in save["error"]  # SAVE_NOT_SUPPORTED (8)
    assert commit is None


# ----------------------------------------------------------------------------- smpclient


def test_smpclient_stat_and_enum(smp_device: EmulatedDevice) -> None:
    advance(smp_device, 3)

    async def body(client: SMPClient) -> list[Any]:
        return [await client.request(ListOfGroups()),
                await client.request(GroupData(name="smp_svr_stats")),
                await client.request(GroupData(name="nope")),
                await client.request(CountSupportedGroups()),
                await client.request(ListSupportedGroups()),
                await client.request(GroupId(index=7)),
                await client.request(GroupId(index=8)),
                await client.request(GroupDetails(groups=[10]))]
    (groups, data, missing, count, ids, last, past, details) = session(smp_device, body)
    assert success(groups) and list(groups.stat_list) == ["smp_svr_stats"]
    assert success(data) and data.fields == {"ticks": 3}
    assert error_v2(missing) and missing.err.rc == STAT_MGMT_ERR.ERR_INVALID_STAT_NAME
    assert success(count) and count.count == 8
    assert success(ids) and list(ids.groups) == NRF_GROUPS
    assert success(last) and (last.group, last.end) == (63, True)
    assert error_v2(past) and past.err.rc == ENUM_MGMT_ERR.ENUM_MGMT_ERR_INDEX_TOO_LARGE
    assert success(details)
    assert [(d.group, d.name, d.handlers) for d in details.groups] == [(10, "enum mgmt", 4)]


def test_smpclient_settings(smp_device: EmulatedDevice) -> None:
    async def body(client: SMPClient) -> list[Any]:
        return [await client.request(WriteSetting(name="app/interval", val=b"\x00\x10")),
                await client.request(ReadSetting(name="app/interval")),
                await client.request(ReadSetting(name="app/greeting", max_size=64)),
                await client.request(WriteSetting(name="id/serial", val=b"x")),
                await client.request(SaveSettings()),
                await client.request(CommitSettings()),
                await client.request(DeleteSetting(name="app/greeting")),
                await client.request(LoadSettings())]
    (write, read, capped, refused, save, commit, delete, load) = session(smp_device, body)
    assert success(write)
    assert success(read) and read.val == b"\x00\x10"
    assert success(capped) and (capped.val, capped.max_size) == (b"hello", 32)
    assert error_v2(refused) and refused.err.rc == SETTINGS_MGMT_ERR.WRITE_NOT_SUPPORTED
    assert success(save) and success(commit) and success(delete) and success(load)
    assert smp_device.call(lambda d: d.settings.store.get(b"app/interval")) == b"\x00\x10"
