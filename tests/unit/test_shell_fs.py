"""The shell's ``fs`` command (``FILE_SYSTEM_SHELL``) on littlefs: Zephyr's texts."""

from __future__ import annotations

import cbor2
import pytest

from smpsim.device.fs.vfs import FS_O_CREATE, FS_O_WRITE
from smpsim.device.mcu import Device
from smpsim.device.shell.commands import roots as root_commands
from smpsim.device.shell.dummy import execute
from smpsim.mcumgr.header import Header
from smpsim.mcumgr.server import Server

from .fs_support import FILE, WRITE, fs_profile

RED, RESET = "\x1b[1;31m", "\x1b[m"


@pytest.fixture
def dk() -> Device:
    device = Device(fs_profile("nrf52840dk", log=None))
    device.boot()
    for path, data in (("/lfs1/hello.txt", b"hi\nthere\n"), ("/lfs1/bin", b"\x00\xff")):
        file = device.fs.open(path, FS_O_CREATE | FS_O_WRITE)
        file.write(data)
        file.close()
    device.fs.mkdir("/lfs1/sub")
    return device


def run(device: Device, line: str) -> tuple[str, int]:
    return execute(device, line.split(" "))


def test_the_fs_command_comes_with_the_fs_shell() -> None:
    assert "fs" in [c.syntax for c in root_commands(fs_profile("nrf52840dk"))]
    assert "fs" not in [c.syntax for c in root_commands(fs_profile("nrf52840dk", shell=False))]
    # the recorded native_sim builds have no FILE_SYSTEM_SHELL
    assert "fs" not in [c.syntax for c in root_commands(fs_profile("native_sim_udp"))]


def test_ls(dk: Device) -> None:
    assert run(dk, "fs ls") == ("\r\nlfs1/\r\n", 0)  # / lists the mount points
    assert run(dk, "fs ls /lfs1") == ("\r\nbin\r\nhello.txt\r\nsub/\r\n", 0)
    assert run(dk, "fs ls /lfs1/sub") == ("\r\n", 0)
    assert run(dk, "fs ls /nowhere") == (
        f"\r\n{RED}Unable to open /nowhere (err -2)\r\n{RESET}", -8)


def test_cd_pwd_and_relative_paths(dk: Device) -> None:
    assert run(dk, "fs pwd") == ("\r\n/\r\n", 0)
    assert run(dk, "fs cd lfs1") == ("\r\n", 0)
    assert run(dk, "fs pwd") == ("\r\n/lfs1\r\n", 0)
    assert run(dk, "fs cat hello.txt") == ("\r\nhi\r\nthere\r\n", 0)
    assert run(dk, "fs cd hello.txt") == (
        f"\r\n{RED}/lfs1/hello.txt is not a directory\r\n{RESET}", -8)
    assert run(dk, "fs cd nope") == (f"\r\n{RED}/lfs1/nope doesn't exist\r\n{RESET}", -8)
    assert run(dk, "fs cd ..") == ("\r\n", 0)
    assert run(dk, "fs pwd") == ("\r\n/\r\n", 0)
    dk.reset()  # the working directory is RAM
    assert run(dk, "fs cd /lfs1/sub") == ("\r\n", 0)
    dk.reset()
    assert run(dk, "fs pwd") == ("\r\n/\r\n", 0)


def test_cat(dk: Device) -> None:
    assert run(dk, "fs cat /lfs1/hello.txt /lfs1/hello.txt") == (
        "\r\nhi\r\nthere\r\nhi\r\nthere\r\n", 0)
    out, ret = run(dk, "fs cat /lfs1/missing /lfs1/sub /lfs1/bin")
    assert ret == 0  # errors are printed, cat goes on
    assert out == (f"\r\n{RED}Failed to obtain file /lfs1/missing (err: -2)\r\n{RESET}"
                   f"{RED}Not a file /lfs1/sub\r\n{RESET}\x00\udcff")
    assert run(dk, "fs cat")[1] == -22  # wrong parameter count


def test_mkdir_rm_statvfs(dk: Device) -> None:
    assert run(dk, "fs mkdir /lfs1/new") == ("\r\n", 0)
    assert run(dk, "fs mkdir /lfs1/new") == (f"\r\n{RED}Error creating dir[-17]\r\n{RESET}", -8)
    assert run(dk, "fs rm /lfs1/new") == ("\r\n", 0)
    assert run(dk, "fs rm /lfs1/new") == (
        f"\r\n{RED}Failed to remove /lfs1/new (-2)\r\n{RESET}", -8)
    area = dk.partitions.get("storage")
    assert area is not None
    out, ret = run(dk, "fs statvfs /lfs1")
    assert ret == 0 and out.startswith(
        f"\r\nbsize 16, frsize 4096, blocks {area.size // 4096}, bfree ")


def test_the_shell_sees_uploads(dk: Device) -> None:
    body = cbor2.dumps({"name": "/lfs1/up.txt", "off": 0, "len": 3, "data": b"up\n"})
    Server(dk).handle(Header(WRITE, 1, 0, len(body), 8, 1, FILE).pack() + body)
    assert run(dk, "fs cat /lfs1/up.txt") == ("\r\nup\r\n", 0)
