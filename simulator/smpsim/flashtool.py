"""``smpsim flash``: look into a flash file and program images into it, as a debug probe would."""

from __future__ import annotations

import argparse
from pathlib import Path

from intelhex import HexRecordError, IntelHex  # type: ignore[import-untyped]

from smpsim import flashfile
from smpsim.config import DEFAULT_PROFILE, Profile, load_profile
from smpsim.device.mcu import Device
from smpsim.device.mcuboot.image import ImageError
from smpsim.errors import ConfigError
from smpsim.mcumgr.groups.img_upload import slot_flags


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``flash info`` and ``flash import`` to the command line."""
    flash = sub.add_parser("flash", help="inspect a flash file or program images into it")
    commands = flash.add_subparsers(dest="flash_command", required=True)
    for name, text in (("info", "print partitions, images and trailers"),
                       ("import", "program a merged .hex, or a .bin at an address")):
        cmd = commands.add_parser(name, help=text)
        cmd.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME|FILE.toml",
                         help=f"the board the flash belongs to (default {DEFAULT_PROFILE})")
        cmd.add_argument("--flash", type=Path, required=True, metavar="PATH",
                         help="the flash file" + (" (created when missing)"
                                                  if name == "import" else ""))
    imp = commands.choices["import"]
    imp.add_argument("file", type=Path, metavar="FILE", help="a .hex, or a .bin with --address")
    imp.add_argument("--address", metavar="ADDR|PARTITION",
                     help="where a .bin goes: an address (0x82000) or a partition (slot1)")


def run(args: argparse.Namespace) -> int:
    """Carry out a ``flash`` command."""
    profile = load_profile(args.profile)
    size = profile.board.flash.size
    if args.flash_command == "info":
        # A shared lock: any number of readers, but not while a board or an import writes.
        owned = flashfile.acquire(args.flash, size, exclusive=False, create=False)
        try:
            device = Device(profile, flash_path=args.flash, read_only=True)
            try:
                print(info(device))
            finally:
                device.close()
        finally:
            owned.close()
        return 0
    chunks = _chunks(profile, args.file, args.address)  # a bad input changes nothing
    owned = flashfile.acquire(args.flash, size)
    try:
        device = Device(profile, flash_path=owned.open_path)
        try:
            mcuboot = profile.mcuboot
            if owned.created and mcuboot is not None and mcuboot.factory_image:
                device.provision()
            for start, data in chunks:
                device.flash.program(start, data)
                print(f"programmed {len(data)} bytes at {start + profile.board.flash.base:#x}")
        finally:
            device.close()
        owned.commit()
    finally:
        owned.close()
    return 0


def _address(profile: Profile, text: str) -> int:
    for partition in profile.board.partitions:
        if partition.name == text:
            return partition.offset
    try:
        address = int(text, 0)
    except ValueError:
        names = ", ".join(p.name for p in profile.board.partitions)
        raise ConfigError(f"--address {text!r} is neither a number nor a partition "
                          f"({names})") from None
    return address - profile.board.flash.base


def _chunks(profile: Profile, path: Path, address: str | None) -> list[tuple[int, bytes]]:
    """(flash offset, bytes) runs to program, checked against the flash."""
    base, size = profile.board.flash.base, profile.board.flash.size
    if path.suffix.lower() == ".hex":
        if address is not None:
            raise ConfigError("a .hex file carries its own addresses: leave out --address")
        try:
            hexfile = IntelHex(str(path))
        except (OSError, HexRecordError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        runs = [(start - base, hexfile.tobinstr(start, end - 1))
                for start, end in hexfile.segments()]
    else:
        if address is None:
            raise ConfigError("a .bin file needs --address ADDR|PARTITION")
        try:
            runs = [(_address(profile, address), path.read_bytes())]
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    for offset, data in runs:
        if offset < 0 or offset + len(data) > size:
            raise ConfigError(f"{len(data)} bytes at {offset + base:#x} do not fit the flash "
                              f"({base:#x}..{base + size:#x})")
    return runs


def info(device: Device) -> str:
    """Partitions, the images found in the slots, their trailers and what MCUboot will do."""
    lines = [f"{device.profile.name}: {device.flash.size // 1024} KiB flash, "
             f"{len(device.flash.sectors)} sectors"]
    for area in device.partitions.areas.values():
        lines.append(f"  {area.name:8} {area.offset:#010x} {area.size:#9x} bytes"
                     f"{'  (erased)' if area.is_erased() else ''}")
    dfu = device.dfu
    if dfu is None:
        lines.append("no MCUboot on this board")
        return "\n".join(lines)
    for image in range(dfu.image_count):
        lines.append(f"image {image}: MCUboot's next boot: swap type "
                     f"{dfu.swap_type(image).name.lower()}")
        for slot, flags in enumerate(slot_flags(dfu, image)):
            try:
                found = dfu.read(image, slot)
                shown = [name for name, value in flags.items() if value]
                if found.header.bootable:
                    shown.insert(0, "bootable")
                text = (f"version {found.version}, {found.size} bytes, hash {found.hash.hex()}, "
                        f"flags: {' '.join(shown) or 'none'}")
            except ImageError as exc:
                text = f"no image ({exc})"
            state = dfu.trailer_state(image, slot)
            lines.append(f"  slot {slot}: {text}")
            lines.append(f"          trailer {state.log_text()}")
    return "\n".join(lines)
