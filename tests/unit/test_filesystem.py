"""The file system: littlefs on the storage partition through the NOR model, Zephyr's VFS rules,
mounting and formatting at boot, the application's files, power cuts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from smpsim.config import FsFile, FsLog, load_profile
from smpsim.config.loader import _check_groups
from smpsim.device.flash import PowerLoss
from smpsim.device.fs import app as fs_app
from smpsim.device.fs.vfs import (
    EFAULT,
    EINVAL,
    EISDIR,
    ENOENT,
    ENOSPC,
    FS_O_APPEND,
    FS_O_CREATE,
    FS_O_READ,
    FS_O_WRITE,
    FS_SEEK_END,
    FsError,
    Vfs,
    raw_path,
)
from smpsim.device.mcu import Device
from smpsim.errors import ConfigError

from .fs_support import FsBoard, fs_profile

FORMAT_LINES = [
    "<inf> littlefs: LittleFS version 2.11, disk version 2.1",
    "<inf> littlefs: FS at flash-controller@0:0xfc000 is 4 0x1000-byte blocks with 512 cycle",
    "<inf> littlefs: partition sizes: rd 16 ; pr 16 ; ca 64 ; la 32",
    "<err> littlefs: WEST_TOPDIR/modules/fs/littlefs/lfs.c:1386: Corrupted dir pair at "
    "{0x0, 0x1}",
    "<wrn> littlefs: can't mount (LFS -84); formatting",
    "<inf> littlefs: /lfs1 mounted",
]
"""The recorded native_sim boot of a new flash (timestamps cut)."""


def _logged(board: FsBoard) -> list[str]:
    return [line.split("] ", 1)[1] for line in board.console if line.startswith("[")]


def write(vfs: Vfs, path: str, data: bytes, flags: int = FS_O_CREATE | FS_O_WRITE) -> None:
    file = vfs.open(path, flags)
    file.write(data)
    file.close()


def read(vfs: Vfs, path: str) -> bytes:
    file = vfs.open(path, FS_O_READ)
    data = file.read(1 << 20)
    file.close()
    return data


def errno_of(fn: object, *args: object) -> int:
    with pytest.raises(FsError) as caught:
        fn(*args)  # type: ignore[operator]
    return caught.value.errno


# ------------------------------------------------------------------ mounting


def test_first_boot_formats_with_zephyrs_log_lines() -> None:
    board = FsBoard()
    assert _logged(board)[:6] == FORMAT_LINES
    assert board.device.fs.mounts  # /lfs1 is there


def test_a_formatted_flash_mounts_without_formatting(tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    board = FsBoard(flash_path=flash)
    write(board.device.fs, "/lfs1/kept.txt", b"kept")
    board.device.close()
    again = FsBoard(flash_path=flash)
    assert _logged(again)[:4] == [FORMAT_LINES[0], FORMAT_LINES[1], FORMAT_LINES[2],
                                  FORMAT_LINES[5]]
    assert read(again.device.fs, "/lfs1/kept.txt") == b"kept"


def test_reset_keeps_files_and_forgets_open_ones() -> None:
    board = FsBoard()
    vfs = board.device.fs
    write(vfs, "/lfs1/a.txt", b"committed")
    pending = vfs.open("/lfs1/b.txt", FS_O_CREATE | FS_O_WRITE)
    pending.write(b"never closed")  # in littlefs's cache only
    board.device.reset()
    assert read(vfs, "/lfs1/a.txt") == b"committed"
    assert vfs.stat("/lfs1/b.txt").size == 0  # created, its data never committed
    assert not board.lines("can't mount")[1:]  # only the first boot formatted


def test_geometry_follows_the_partition_and_profile() -> None:
    board = FsBoard("nrf52840dk")
    area = board.device.partitions.get("storage")
    assert area is not None
    assert board.lines("FS at")[0].endswith(
        f"<inf> littlefs: FS at flash-controller@4001e000:0x{area.offset:x} is "
        f"{area.size // 4096} 0x1000-byte blocks with 512 cycle")
    board = FsBoard(fs_profile("fast", read_size=32, prog_size=32, cache_size=128,
                               lookahead_size=64, block_cycles=100))
    assert board.lines("FS at")[0].endswith("is 32 0x400-byte blocks with 100 cycle")
    assert board.lines("partition sizes")[0].endswith("rd 32 ; pr 32 ; ca 128 ; la 64")


def test_no_fs_group_or_no_mount_point_means_no_file_system() -> None:
    raw = FsBoard("native_sim_serial_raw")  # zbasic but no fs group: smp_svr mounts nothing
    assert not raw.lines("littlefs")
    assert errno_of(raw.device.fs.stat, "/lfs1/x") == -ENOENT
    off = FsBoard(fs_profile(mount_point=""))
    assert not off.lines("littlefs") and not off.device.fs.mounts


def test_every_program_and_erase_is_a_timed_flash_operation() -> None:
    board = FsBoard("nrf52840dk")  # 85 ms a 4 KiB erase, 41 us a 4-byte word
    flash, clock = board.device.flash, board.device.clock
    erases, writes, programmed, busy = (flash.erases, flash.writes, flash.bytes_written,
                                        clock.busy_total)
    write(board.device.fs, "/lfs1/big.bin", bytes(9000))
    new_erases, new_bytes = flash.erases - erases, flash.bytes_written - programmed
    assert new_erases >= 3 and new_bytes >= 9000
    assert flash.writes - writes >= 9000 // 64  # littlefs programs cache_size bytes at a time
    assert clock.busy_total - busy == pytest.approx(new_erases * 0.085 + new_bytes / 4 * 41e-6)


# ------------------------------------------------------------------ Zephyr's VFS rules


def test_path_rules() -> None:
    board = FsBoard()
    vfs = board.device.fs
    write(vfs, "/lfs1/file.txt", b"x")
    vfs.mkdir("/lfs1/dir")
    assert vfs.stat("/").is_dir
    assert vfs.stat("/lfs1").is_dir and vfs.stat("/lfs1/").is_dir
    assert vfs.stat("/lfs1/dir").is_dir
    assert vfs.stat("/lfs1/file.txt").size == 1
    assert errno_of(vfs.stat, "file.txt") == -EINVAL
    assert errno_of(vfs.stat, "") == -EINVAL
    assert errno_of(vfs.stat, "/lfs1x/file.txt") == -ENOENT  # not the mount point /lfs1
    assert errno_of(vfs.stat, "/nomount") == -ENOENT
    assert errno_of(vfs.stat, "/lfs1/missing") == -ENOENT
    assert errno_of(vfs.open, "/", FS_O_READ) == -EINVAL
    assert errno_of(vfs.open, "/lfs1", FS_O_CREATE | FS_O_WRITE) == -EISDIR
    assert errno_of(vfs.open, "/lfs1/nodir/x", FS_O_CREATE | FS_O_WRITE) == -ENOENT
    assert _logged(board)[-7:] == [
        "<err> fs: invalid file or dir name!!", "<err> fs: invalid file or dir name!!",
        "<err> fs: mount point not found!!", "<err> fs: mount point not found!!",
        "<err> fs: invalid file name!!", "<err> fs: file open error (-21)",
        "<err> fs: file open error (-2)"]
    assert [e.name for e in vfs.listdir("/lfs1")] == ["dir", "file.txt"]
    assert [(e.name, e.is_dir) for e in vfs.listdir("/")] == [("lfs1", True)]


def test_paths_are_c_strings_of_raw_bytes() -> None:
    vfs = FsBoard().device.fs
    assert raw_path("/lfs1/a\0b") == b"/lfs1/a"
    write(vfs, "/lfs1/a\0ignored", b"1")
    assert read(vfs, "/lfs1/a") == b"1"
    odd = "/lfs1/\udcff\u00e9"  # a byte that is not UTF-8, then é
    write(vfs, odd, b"2")
    (entry,) = [e for e in vfs.listdir("/lfs1") if e.name != "a"]
    assert entry.name.encode("latin-1") == b"\xff\xc3\xa9"
    assert read(vfs, odd) == b"2"


def test_file_operations() -> None:
    vfs = FsBoard().device.fs
    write(vfs, "/lfs1/f", b"hello world")
    file = vfs.open("/lfs1/f", FS_O_READ | FS_O_WRITE)
    file.seek(6)
    assert file.read(5) == b"world"
    file.seek(0, FS_SEEK_END)
    assert file.tell() == 11
    file.write(b"!")
    file.seek(0)
    file.truncate(5)
    file.close()
    assert read(vfs, "/lfs1/f") == b"hello"
    write(vfs, "/lfs1/f", b"++", FS_O_WRITE | FS_O_APPEND)
    assert read(vfs, "/lfs1/f") == b"hello++"
    file = vfs.open("/lfs1/f", FS_O_READ)
    file.seek(1 << 32)  # off_t is 32 bits: wraps to 0 as the C cast does
    assert file.read(2) == b"he"
    assert errno_of(file.seek, 0x80000000) == -EINVAL
    file.close()
    file.close()  # closing twice is harmless
    vfs.rename("/lfs1/f", "/lfs1/g")
    vfs.unlink("/lfs1/g")
    assert errno_of(vfs.stat, "/lfs1/g") == -ENOENT
    bsize, frsize, blocks, bfree = vfs.statvfs("/lfs1")
    assert (bsize, frsize, blocks) == (16, 4096, 4) and 0 < bfree < 4


def test_a_full_file_system_says_enospc() -> None:
    vfs = FsBoard().device.fs  # 4 blocks, 2 of them the root directory pair
    file = vfs.open("/lfs1/big", FS_O_CREATE | FS_O_WRITE)
    with pytest.raises(FsError) as caught:
        for _ in range(20):
            file.write(bytes(1024))
    assert caught.value.errno == -ENOSPC


def test_an_erased_partition_is_corrupt_until_the_next_boot() -> None:
    board = FsBoard()
    vfs = board.device.fs
    write(vfs, "/lfs1/f", b"data")
    area = board.device.partitions.get("storage")
    assert area is not None
    area.erase(0, area.size)
    assert errno_of(vfs.stat, "/lfs1/f") == -EFAULT
    assert _logged(board)[-2:] == [FORMAT_LINES[3], "<err> fs: failed get file or dir stat (-14)"]
    board.console.clear()
    board.device.reset()
    assert _logged(board)[3:6] == FORMAT_LINES[3:6]
    assert errno_of(vfs.stat, "/lfs1/f") == -ENOENT


# ------------------------------------------------------------------ power cuts


def test_a_power_cut_mid_write_leaves_littlefs_consistent(tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    board = FsBoard("nrf52840dk", flash_path=flash)
    vfs = board.device.fs
    write(vfs, "/lfs1/old.bin", bytes(range(256)) * 20)
    file = vfs.open("/lfs1/new.bin", FS_O_CREATE | FS_O_WRITE)
    board.device.flash.cut_power_before(3)
    with pytest.raises(PowerLoss):
        file.write(bytes(6000))
    with pytest.raises(PowerLoss):  # the board is off: nothing more reaches the flash
        vfs.stat("/lfs1/old.bin")
    board.device.close()
    after = FsBoard("nrf52840dk", flash_path=flash)
    assert not after.lines("formatting")
    assert read(after.device.fs, "/lfs1/old.bin") == bytes(range(256)) * 20
    assert after.device.fs.stat("/lfs1/new.bin").size == 0


@pytest.mark.parametrize("cut", range(1, 40, 3))
def test_power_cut_at_any_operation_of_a_rewrite(tmp_path: Path, cut: int) -> None:
    """A file rewritten whole is, after a cut anywhere, the old or the new content."""
    flash = tmp_path / "flash.bin"
    board = FsBoard("fast", flash_path=flash)
    old, new = b"o" * 3000, b"n" * 2500
    write(board.device.fs, "/lfs1/f", old)
    board.device.flash.cut_power_before(cut)
    try:
        write(board.device.fs, "/lfs1/f", new, FS_O_CREATE | FS_O_WRITE)
        cut_happened = False
    except PowerLoss:
        cut_happened = True
    board.device.close()
    content = read(FsBoard("fast", flash_path=flash).device.fs, "/lfs1/f")
    expected = (new + old[len(new):],) if not cut_happened else (old, new + old[len(new):])
    assert content in expected


# ------------------------------------------------------------------ the application's files


def test_seeded_files_and_the_log() -> None:
    prof = fs_profile("fast", files=(FsFile("/lfs1/hello.txt", "hi\n"),),
                      log=FsLog("/lfs1/app.log", interval_s=10.0, max_size=200))
    board = FsBoard(prof)
    vfs = board.device.fs
    assert read(vfs, "/lfs1/hello.txt") == b"hi\n"
    assert read(vfs, "/lfs1/app.log") == b"[00:00:00.000,000] boot 1, build v4.4.0\n"
    board.device.clock.advance(25.0)
    log = read(vfs, "/lfs1/app.log")  # the work due ran before this call
    assert log.endswith(b"[00:00:25.000,000] uptime 25 s\n")
    assert log.count(b"uptime") == 1  # one line per access, at the time of the access
    write(vfs, "/lfs1/hello.txt", b"changed")
    for _ in range(8):
        board.device.clock.advance(10.0)
        vfs.stat("/lfs1/hello.txt")
    assert vfs.stat("/lfs1/app.log.1").size > 0  # rotated
    assert vfs.stat("/lfs1/app.log").size <= 200
    board.device.reset()
    assert read(vfs, "/lfs1/hello.txt") == b"changed"  # only created when missing
    assert read(vfs, "/lfs1/app.log").endswith(b"] boot 2, build v4.4.0\n")


def test_the_default_board_keeps_a_log() -> None:
    board = FsBoard("nrf52840dk")
    data = read(board.device.fs, "/lfs1/app.log")
    # stamped after the format at first boot took its time
    assert re.fullmatch(rb"\[00:00:00\.\d{3},\d{3}\] boot 1, build v4\.4\.0\n", data)


def test_lazy_work_runs_once_due_and_in_order() -> None:
    board = FsBoard()
    vfs, clock, ran = board.device.fs, board.device.clock, []
    vfs.call_later("b", 2.0, lambda: ran.append("b"))
    vfs.call_later("a", 1.0, lambda: ran.append("a"))
    vfs.call_later("c", 5.0, lambda: ran.append("c"))
    vfs.cancel("c")
    vfs.run_due()
    assert ran == []
    clock.advance(3.0)
    vfs.stat("/lfs1")
    assert ran == ["a", "b"]
    vfs.run_due()
    assert ran == ["a", "b"]
    device = board.device
    fs_app.start(device.fs, device.profile.firmware, device.partitions.get("storage"),
                 device.uptime_s, "boot")  # a boot drops pending work
    assert not vfs._timers


def test_profile_checks() -> None:
    base = load_profile("native_sim_udp")

    def check(**fs: object) -> None:
        fw = dataclasses.replace(base.firmware, fs=dataclasses.replace(base.firmware.fs, **fs))
        _check_groups(dataclasses.replace(base, firmware=fw))

    for bad in ({"mount_point": "lfs1"}, {"mount_point": "/a/b"}, {"cache_size": 40},
                {"lookahead_size": 12}, {"prog_size": 0}, {"hash_types": ("md5",)},
                {"path_len": 0}, {"files": (FsFile("/other/x"),)}, {"hash_types": ()},
                {"log": FsLog("/lfs1/l", interval_s=-1)}):
        with pytest.raises(ConfigError):
            check(**bad)
    check(mount_point="")  # no file system: nothing else is checked
    settings = dataclasses.replace(base.firmware.settings, partition="storage")
    with pytest.raises(ConfigError, match="holds littlefs"):
        _check_groups(dataclasses.replace(base, firmware=dataclasses.replace(
            base.firmware, settings=settings)))
    no_storage = dataclasses.replace(base, board=dataclasses.replace(base.board, partitions=()))
    with pytest.raises(ConfigError, match="storage"):
        _check_groups(no_storage)
    tiny = dataclasses.replace(base.board.partitions[0], size=0x1000)
    with pytest.raises(ConfigError, match="need 2"):
        Device(dataclasses.replace(base, board=dataclasses.replace(
            base.board, partitions=(tiny,)))).boot()
