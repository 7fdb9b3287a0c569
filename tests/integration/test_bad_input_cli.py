"""Every bad input of issue 14's list, given to the real ``smpsim run``: exit 2, one
``smpsim: error:`` line naming the file, key or option, no Python stack, and nothing created or
changed (it used to be a traceback, a process killed for memory, or a board that never answers)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
from pathlib import Path

import pytest

from .itsupport import BIN

SMPSIM = str(BIN / "smpsim")
FLASH_SIZE = 0x100000  # nrf52840dk

# A full partition table for the fast board (1 KiB sectors, 128 KiB), with one entry to spoil.
FAST_TABLE = [("mcuboot", 0x0, 0x4000), ("slot0", 0x4000, 0xA000), ("slot1", 0xE000, 0xA000),
              ("storage", 0x18000, 0x8000)]


def _table(**changes: tuple[int, int]) -> str:
    rows = [(name, *changes.get(name, (offset, size))) for name, offset, size in FAST_TABLE]
    return "".join(f'[[board.partitions]]\nname = "{n}"\noffset = {o:#x}\nsize = {s:#x}\n'
                   for n, o, s in rows)


PROFILES = {
    "negative size": ("[board.flash]\nsize = -5\n", "board.flash.size"),
    "zero erase block": ("[board.flash]\nerase_block = 0\n", "board.flash.erase_block"),
    "partition past the end": (_table(storage=(0x18000, 0x10000)),
                               "'storage'"),
    "unknown mcuboot mode": ('[mcuboot]\nmode = "swap-sideways"\n', "mcuboot.mode"),
    "nan boot time": ("[board]\nboot_time_ms = nan\n", "board.boot_time_ms"),
    "negative boot time": ("[board]\nboot_time_ms = -100\n", "board.boot_time_ms"),
    "4 TiB flash": ("[board.flash]\nsize = 0x40000000000\n", "board.flash.size"),
    "overlapping slots": (_table(slot1=(0x8000, 0xA000)), "overlaps"),
    "udp_mtu 0": ("[firmware]\nudp_mtu = 0\n", "firmware.udp_mtu"),
    "littlefs block_cycles 0": ("[firmware.fs]\nblock_cycles = 0\n", "firmware.fs.block_cycles"),
}


def run(*args: str, cwd: Path) -> tuple[int, str]:
    proc = subprocess.run([SMPSIM, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)
    return proc.returncode, proc.stderr


def assert_refused(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("smpsim: error: "), err
    for name in names:
        assert name in last, err


def listing(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", PROFILES, ids=list(PROFILES))
def test_a_bad_profile_is_refused(tmp_path: Path, case: str) -> None:
    text, key = PROFILES[case]
    profile = tmp_path / "bad.toml"
    profile.write_text('extends = "fast"\n' + text, encoding="utf-8")
    before = listing(tmp_path)
    code, err = run("run", "--profile", str(profile), "--flash", str(tmp_path / "f.bin"),
                    "--udp", "127.0.0.1:0", "--time-scale", "1", cwd=tmp_path)
    assert_refused(code, err, str(profile), key)
    assert listing(tmp_path) == before


def test_a_profile_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "latin1.toml"
    profile.write_bytes(b'extends = "fast"\ndescription = "caf\xe9"\n')
    code, err = run("run", "--profile", str(profile), "--udp", "127.0.0.1:0", cwd=tmp_path)
    assert_refused(code, err, str(profile.name), "UTF-8")


def _flash(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "flash.bin"
    if kind == "a folder":
        path.mkdir()
    elif kind == "an empty file":
        path.write_bytes(b"")
    elif kind == "a truncated file":
        path.write_bytes(b"\xff" * (FLASH_SIZE // 2))
    elif kind == "a too big file":
        path.write_bytes(b"\xff" * (FLASH_SIZE * 2))
    elif kind == "/dev/null":
        path = Path("/dev/null")
    elif kind == "a read-only file":
        path.write_bytes(b"\xff" * FLASH_SIZE)
        path.chmod(0o444)
    elif kind == "a path under a file":
        (tmp_path / "plain").write_bytes(b"")
        path = tmp_path / "plain" / "flash.bin"
    return path


FLASH_CASES = {"a folder": "is a folder", "an empty file": "has 0 bytes",
               "a truncated file": "has 524288 bytes", "a too big file": "has 2097152 bytes",
               "/dev/null": "not a regular file", "a read-only file": "read-only",
               "a path under a file": "Not a directory"}


@pytest.mark.parametrize("kind", FLASH_CASES, ids=list(FLASH_CASES))
def test_a_bad_flash_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = _flash(tmp_path, kind)
    before = listing(tmp_path)
    code, err = run("run", "--flash", str(path), "--udp", "127.0.0.1:0", cwd=tmp_path)
    assert_refused(code, err, str(path), FLASH_CASES[kind])
    assert listing(tmp_path) == before


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e400", "x"])
def test_a_bad_time_scale_is_refused(tmp_path: Path, value: str) -> None:
    code, err = run("run", "--time-scale", value, "--udp", "127.0.0.1:0", cwd=tmp_path)
    assert_refused(code, err, "--time-scale")


def test_a_port_in_use_creates_no_flash_file(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        code, err = run("run", "--flash", str(tmp_path / "var" / "flash.bin"),
                        "--udp", f"127.0.0.1:{port}", cwd=tmp_path)
    assert_refused(code, err, f"127.0.0.1:{port}")
    assert listing(tmp_path) == {}  # not the file, nor its part file, nor the folder made for it


def test_flash_info_reads_a_read_only_file(tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    code, err = run("flash", "import", str(BIN.parents[1] / "flash_images" / "app-1.1.0.bin"),
                    "--address", "slot1", "--flash", str(flash), cwd=tmp_path)
    assert code == 0, err
    flash.chmod(0o444)
    proc = subprocess.run([SMPSIM, "flash", "info", "--flash", str(flash)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "slot 1: version 1.1.0" in proc.stdout


def test_a_read_only_mount_is_refused(tmp_path: Path) -> None:
    # A private mount namespace: the read-only tmpfs never shows on the host.
    mount = tmp_path / "ro"
    mount.mkdir()
    script = (f"mount -t tmpfs none {mount} && head -c {FLASH_SIZE} /dev/zero | tr '\\0' '\\377'"
              f" > {mount}/flash.bin && mount -o remount,ro {mount} && "
              f"{SMPSIM} run --flash {mount}/flash.bin --udp 127.0.0.1:0; echo exit $?; "
              f"{SMPSIM} run --flash {mount}/new.bin --udp 127.0.0.1:0; echo exit $?")
    proc = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.split() == ["exit", "2", "exit", "2"], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"cannot open flash file {mount}/flash.bin for writing: Read-only file system" \
        in proc.stderr
    assert f"cannot create flash file {mount}/new.bin: Read-only file system" in proc.stderr
