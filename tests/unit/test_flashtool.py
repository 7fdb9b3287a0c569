"""``smpsim flash import`` and ``smpsim flash info``: a debug probe's view of the flash file."""

from __future__ import annotations

from pathlib import Path

import pytest
from intelhex import IntelHex  # type: ignore[import-untyped]

from smpsim.cli import main
from smpsim.config import load_profile
from smpsim.device.mcu import Device

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "flash_images" / "app-1.1.0.bin"


def flash_cmd(*args: str) -> list[str]:
    return ["flash", *args]


def test_a_new_flash_file_gets_the_factory_image_and_info_shows_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flash = tmp_path / "f.bin"
    assert main(flash_cmd("import", str(APP), "--flash", str(flash), "--address", "slot1")) == 0
    assert "programmed 33472 bytes at 0x82000" in capsys.readouterr().out
    assert main(flash_cmd("info", "--flash", str(flash))) == 0
    out = capsys.readouterr().out
    assert "slot0    0x0000c000   0x76000 bytes" in out
    assert "storage  0x000f8000    0x6000 bytes  (erased)" in out
    assert "settings 0x000fe000    0x2000 bytes  (erased)" in out
    assert "slot 0: version 1.0.0" in out  # factory-provisioned
    assert "flags: bootable confirmed active" in out
    assert "slot 1: version 1.1.0, 33472 bytes" in out
    assert out.rstrip().count("flags: bootable\n") == 1  # slot 1: uploaded, nothing requested
    assert "swap type none" in out  # an upload alone requests nothing
    assert out.count("trailer magic=unset") == 2


def test_a_bin_goes_to_an_address_relative_to_the_flash_base(tmp_path: Path) -> None:
    flash = tmp_path / "stm.bin"
    data = b"\x12\x34" * 8
    (tmp_path / "d.bin").write_bytes(data)
    assert main(flash_cmd("import", str(tmp_path / "d.bin"), "--profile", "stm32f4",
                          "--flash", str(flash), "--address", "0x080E0000")) == 0
    device = Device(load_profile("stm32f4"), flash_path=flash)
    try:
        assert device.flash.read(0xE0000, len(data)) == data
        assert device.flash.is_erased(0xE0000 + len(data), 0x100)
    finally:
        device.close()


def test_a_merged_hex_carries_its_own_addresses(tmp_path: Path) -> None:
    hexfile = IntelHex()
    hexfile.puts(0x0, b"\xaa" * 16)  # a "bootloader"
    hexfile.puts(0x82000, APP.read_bytes()[:64])
    hexfile.write_hex_file(str(tmp_path / "merged.hex"))
    flash = tmp_path / "f.bin"
    assert main(flash_cmd("import", str(tmp_path / "merged.hex"), "--flash", str(flash))) == 0
    device = Device(load_profile("nrf52840dk"), flash_path=flash)
    try:
        assert device.flash.read(0, 16) == b"\xaa" * 16
        assert device.flash.read(0x82000, 64) == APP.read_bytes()[:64]
    finally:
        device.close()


@pytest.mark.parametrize(("args", "message"), [
    (["import", "APP", "--flash", "F"], "a .bin file needs --address"),
    (["import", "APP", "--flash", "F", "--address", "nowhere"],
     "neither a number nor a partition"),
    (["import", "APP", "--flash", "F", "--address", "0xFFFFF"], "do not fit the flash"),
    (["import", "HEX", "--flash", "F", "--address", "slot1"], "carries its own addresses"),
    (["import", "MISSING", "--flash", "F", "--address", "slot1"], "cannot read"),
    (["info", "--flash", "NOFLASH"], "no flash file"),
])
def test_mistakes_are_exit_code_2_with_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
        message: str) -> None:
    hexfile = tmp_path / "x.hex"
    IntelHex().write_hex_file(str(hexfile))
    names = {"APP": str(APP), "F": str(tmp_path / "f.bin"), "HEX": str(hexfile),
             "MISSING": str(tmp_path / "missing.bin"), "NOFLASH": str(tmp_path / "none.bin")}
    assert main(flash_cmd(*(names.get(a, a) for a in args))) == 2
    assert message in capsys.readouterr().err
