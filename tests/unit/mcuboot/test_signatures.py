"""The signatures file shipped with the images (``smpsim/firmware/signatures.txt``): MCUboot's
model takes its verdicts without ``cryptography``, so every line is checked here again with the
library, and the file must list exactly the signed images shipped beside it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from smpsim.device.mcuboot.builtin import SIGNATURES_FILE, good_signatures, key_pem
from smpsim.device.mcuboot.image import (
    KeyRing,
    TlvType,
    check_signature,
    read_image,
    validate_image,
)
from smpsim.device.mcuboot.keys import public_key

FIRMWARE = Path(__file__).resolve().parents[3] / "simulator" / "smpsim" / "firmware"
KINDS = ("rsa-2048", "rsa-3072", "ecdsa-p256", "ed25519")
SIGNATURE_TLVS = {TlvType.RSA2048_PSS, TlvType.RSA3072_PSS, TlvType.ECDSA_SIG, TlvType.ED25519}


def _triple(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(key hash, recomputed image hash, signature TLV) of a signed image; None if hash only."""
    image = read_image(lambda off, n: data[off:off + n], len(data))
    tlvs = {t.type: t.value for t in image.tlvs}
    if TlvType.KEYHASH not in tlvs:
        return None
    digest = hashlib.sha256(data[:image.size - image.unprotected_tlv_size]).digest()
    assert digest == tlvs[TlvType.SHA256]
    return tlvs[TlvType.KEYHASH], digest, next(v for k, v in tlvs.items() if k in SIGNATURE_TLVS)


def test_the_file_lists_exactly_the_signed_images_shipped() -> None:
    shipped = {path.name: _triple(path.read_bytes()) for path in FIRMWARE.glob("*.bin")}
    signed = {name: triple for name, triple in shipped.items() if triple is not None}
    assert len(signed) == 6 and "factory-none.bin" not in signed
    lines = [line.split() for line in (FIRMWARE / SIGNATURES_FILE).read_text().splitlines()
             if not line.startswith("#")]
    assert {name: (bytes.fromhex(k), bytes.fromhex(d), bytes.fromhex(s))
            for name, k, d, s in lines} == signed
    assert good_signatures() == frozenset(signed.values())


def test_every_listed_signature_verifies_with_the_library() -> None:
    ring = {key.keyhash: key for key in (public_key(key_pem(f"insecure-test-{kind}"))
                                         for kind in KINDS)}
    for keyhash, digest, sig in good_signatures():
        assert check_signature(ring[keyhash], sig, digest)
        flipped = sig[:8] + bytes([sig[8] ^ 1]) + sig[9:]
        assert not check_signature(ring[keyhash], flipped, digest)


@pytest.mark.parametrize("kind", KINDS)
def test_a_shipped_image_with_another_signature_is_checked_by_the_library(kind: str) -> None:
    """A known verdict holds for its exact (key, digest, signature) only: the factory image with
    one signature byte changed is refused."""
    data = bytearray((FIRMWARE / f"factory-{kind}.bin").read_bytes())
    _, _, sig = _triple(bytes(data)) or pytest.fail("not signed")
    at = bytes(data).rindex(sig) + 8
    ring = KeyRing([key_pem(f"insecure-test-{kind}")])
    limit = 0x20000
    slot = bytes(data) + b"\xff" * (limit - len(data))
    assert validate_image(lambda off, n: slot[off:off + n], limit, kind, ring).ok
    data[at] ^= 1
    slot = bytes(data) + b"\xff" * (limit - len(data))
    result = validate_image(lambda off, n: slot[off:off + n], limit, kind, ring)
    assert (result.ok, result.reason) == (False, "signature does not verify")


def test_a_board_booting_the_factory_image_does_not_import_the_library() -> None:
    code = """
import asyncio, sys
from smpsim.board import Board
from smpsim.config import load_profile
from smpsim.transports.endpoint import EndpointSpec

async def boot() -> None:
    board = Board(load_profile("nrf52840dk"), [EndpointSpec("udp", "127.0.0.1:0")])
    await board.start()
    assert board.runner.online, "did not boot"
    await board.stop()

asyncio.run(boot())
print(sorted(m for m in sys.modules if m.startswith("cryptography")))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.strip() == "[]"
