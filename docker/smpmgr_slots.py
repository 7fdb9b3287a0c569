"""What `make docker-test` reads out of smpmgr: an image's hash, and the slots it reports.

    python docker/smpmgr_slots.py hash IMAGE.bin     # the image's SHA-256 TLV, as hex
    smpmgr --ip HOST image state-read | python docker/smpmgr_slots.py slots
        # one line per slot: "slot=0 version=1.1.0 hash=... flags=active,confirmed"

smpmgr prints pydantic reprs (rich may spread one over several lines) and exits 0 even when the
board answered an error: a reply without ImageState blocks prints nothing, and the caller's
grep fails.
"""

from __future__ import annotations

import re
import sys

from smpclient.mcuboot import IMAGE_TLV, ImageInfo

FLAGS = ("pending", "confirmed", "active", "permanent")
_STATE = re.compile(r"ImageState\((.*?)\n\)", re.DOTALL)


def image_hash(path: str) -> str:
    """The SHA-256 TLV of an MCUboot image file."""
    return bytes(ImageInfo.load_file(path).get_tlv(IMAGE_TLV.SHA256).value).hex()


def slots(text: str) -> list[str]:
    """The ImageState reprs of ``image state-read`` output, one line each."""
    lines = []
    for block in _STATE.findall(text):
        slot = re.search(r"\bslot=(\d+)", block)
        version = re.search(r"\bversion='([^']*)'", block)
        digest = re.search(r"\bhash=HashBytes\(\s*'([0-9A-Fa-f]+)'", block)
        if not (slot and version and digest):
            continue
        flags = [name for name in FLAGS if re.search(rf"\b{name}=True", block)]
        lines.append(f"slot={slot[1]} version={version[1]} hash={digest[1].lower()} "
                     f"flags={','.join(flags)}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "hash":
        print(image_hash(argv[1]))
        return 0
    if argv == ["slots"]:
        for line in slots(sys.stdin.read()):
            print(line)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
