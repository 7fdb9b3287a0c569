"""One owner per flash file and per serial link, and flash files that appear only whole, with
real ``smpsim`` processes: a second board, an import or an inspection of a file in use is refused
with the owner's PID and changes nothing; a kill at any moment of making a new file leaves no
file or a provisioned one."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from smpsim.config import load_profile
from smpsim.device.mcu import Device

from .itsupport import BIN, smpsim_run

SMPSIM = str(BIN / "smpsim")
IMAGE = BIN.parents[1] / "flash_images" / "app-1.1.0.bin"


def smpsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SMPSIM, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_second_owner_of_a_flash_file_is_refused(tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    with smpsim_run("--flash", str(flash), "--udp", "127.0.0.1:0", "--time-scale", "0") \
            as (first, _):
        before = digest(flash)
        for args in (("run", "--flash", str(flash), "--udp", "127.0.0.1:0"),
                     ("flash", "import", str(IMAGE), "--address", "slot1", "--flash",
                      str(flash)),
                     ("flash", "info", "--flash", str(flash))):
            proc = smpsim(*args)
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.strip() == (
                f"smpsim: error: flash file {flash} is in use by process {first.pid}; one "
                "board per flash file (stop that one, or give another --flash)"), proc.stderr
            assert digest(flash) == before
        first.send_signal(signal.SIGTERM)
        first.wait(10)
    assert digest(flash) == before
    # The lock went with the process: the file is everyone's again.
    assert smpsim("flash", "import", str(IMAGE), "--address", "slot1", "--flash",
                  str(flash)).returncode == 0
    info = smpsim("flash", "info", "--flash", str(flash))
    assert info.returncode == 0 and "slot 1: version 1.1.0" in info.stdout


def test_a_second_board_on_a_live_serial_link_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "board.tty"
    with smpsim_run("--serial", str(link), "--time-scale", "0") as (first, _):
        pts = os.readlink(link)
        proc = smpsim("run", "--serial", str(link), "--time-scale", "0")
        assert proc.returncode == 2, proc.stderr
        assert f"serial link {link} is served by smpsim process {first.pid}" in proc.stderr
        assert os.readlink(link) == pts  # still the first board's PTY
    # A link left behind by a killed board is taken over.
    assert link.is_symlink()
    with smpsim_run("--serial", str(link), "--time-scale", "0") as (_, ready):
        assert str(link) in ready[0]
        assert os.path.exists(os.readlink(link))


def provisioned(flash: Path) -> bool:
    """The factory image is in slot 0 (what provisioning programs)."""
    device = Device(load_profile("nrf52840dk"), flash_path=flash, read_only=True)
    try:
        assert device.dfu is not None
        return str(device.dfu.read(0, 0).version) == "1.0.0"
    finally:
        device.close()


def test_a_kill_while_a_new_flash_file_is_made_leaves_none_or_a_whole_one(
        tmp_path: Path) -> None:
    flash = tmp_path / "var" / "flash.bin"
    rng = random.Random(14)
    outcomes = set()
    for _ in range(12):
        proc = subprocess.Popen([SMPSIM, "run", "--flash", str(flash), "--udp", "127.0.0.1:0",
                                 "--time-scale", "1"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Python's start, the lock, the erased part file, provisioning, the first boot (with
        # littlefs formatted) at real time: about a second and a half in all.
        time.sleep(rng.uniform(0.3, 2.0))
        proc.kill()
        proc.wait()
        if flash.exists():
            assert flash.stat().st_size == 0x100000
            assert provisioned(flash)
            outcomes.add("whole")
            flash.unlink()
        else:
            outcomes.add("none")
    assert outcomes == {"whole", "none"}  # the kills landed on both sides of the commit
    # A part file a kill left behind is taken over by the next start, and gone once it is up.
    with smpsim_run("--flash", str(flash), "--udp", "127.0.0.1:0", "--time-scale", "0"):
        assert provisioned_while_running(flash)
    assert sorted(p.name for p in flash.parent.iterdir()) == ["flash.bin"]


def provisioned_while_running(flash: Path) -> bool:
    # flash info is refused while a board owns the file: read its bytes instead.
    data = flash.read_bytes()
    return data[0xC000:0xC004] == bytes.fromhex("3db8f396")  # MCUboot's image magic, slot 0
