"""``smpsim image info FILE``: what an MCUboot image file is, as a client will see it.

Prints the version, the hash img_mgmt lists (``smpmgr``, ``mcumgr image list``) and clients
pass to ``image test``/``confirm``, the sizes, and whether MCUboot would boot it: the hash
checked, and the signature checked against smpsim's insecure test keys.
"""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

from smpsim.config.schema import TEST_KEYS
from smpsim.device.mcuboot.builtin import key_pem
from smpsim.device.mcuboot.image import (
    AppBehaviour,
    ImageError,
    KeyRing,
    read_image,
    validate_image,
)
from smpsim.device.mcuboot.keys import Signature
from smpsim.errors import ConfigError

SLOT_LIMIT = 1 << 31
"""No slot bounds a file: anything that fits a file is read."""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``image info`` to the command line."""
    image = sub.add_parser("image", help="look into MCUboot image files")
    commands = image.add_subparsers(dest="image_command", required=True)
    info_cmd = commands.add_parser("info", help="version, hash (as clients list it), signature")
    info_cmd.add_argument("files", nargs="+", type=Path, metavar="FILE",
                          help="MCUboot image (.bin, as imgtool signs it)")


def run(args: argparse.Namespace) -> int:
    """Carry out an ``image`` command."""
    texts = []
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        texts.append(info(path.name, data))
    print("\n".join(texts))
    return 0


def info(name: str, data: bytes) -> str:
    """A few lines about the image ``data``."""
    def read(offset: int, length: int) -> bytes:
        return data[offset:offset + length].ljust(length, b"\xff")

    try:
        image = read_image(read, len(data) + 1)
    except ImageError as exc:
        return f"{name}: not an MCUboot image ({exc})"
    lines = [f"{name}: version {image.version}, {image.size} bytes "
             f"(header {image.header.hdr_size:#x}, payload {image.header.img_size})",
             f"  hash {image.hash.hex()}"]
    checked = validate_image(read, len(data) + 1, "none", KeyRing())
    lines.append(f"  hash check: {'ok' if checked.ok else checked.reason}")
    signed = [(signature, key) for signature in typing.get_args(Signature)
              if signature != "none" for key in TEST_KEYS
              if key.endswith(signature) and validate_image(
                  read, len(data) + 1, signature, KeyRing([key_pem(key)])).ok]
    lines.append("  signature: " + (f"{signed[0][0]}, by smpsim's {signed[0][1]}" if signed
                                    else "none that smpsim's test keys verify (hash only, "
                                    "or another key)"))
    if image.app != AppBehaviour():
        app = image.app
        lines.append(f"  simulated application (smpsim's app TLV): boot {app.boot}, "
                     f"confirms itself: {'yes' if app.confirm else 'no'}")
    return "\n".join(lines)
