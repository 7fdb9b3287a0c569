"""smpsim's packaged MCUboot material: insecure test keys, the factory images and the
signatures of the signed images, checked when they were made.

All are made by ``make images`` (``flash_images/build.py``) and shipped in
``smpsim/firmware/``, so a board can be provisioned without the source tree.
"""

from __future__ import annotations

import functools
from pathlib import Path

from smpsim.errors import ConfigError

_FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
"""Installed beside the package's modules (a plain path, as the built-in profiles: see
``smpsim.config.loader``)."""


@functools.lru_cache(maxsize=64)
def key_pem(entry: str) -> str:
    """A profile's key entry as PEM: inline PEM text is kept, a name is a packaged test key."""
    if entry.lstrip().startswith("-----BEGIN"):
        return entry
    resource = _FIRMWARE / f"{entry}.pub.pem"
    if not resource.is_file():
        raise ConfigError(f"mcuboot.keys: no built-in key {entry!r} (give PEM text or one of "
                          "insecure-test-rsa-2048, insecure-test-rsa-3072, "
                          "insecure-test-ecdsa-p256, insecure-test-ed25519)")
    return resource.read_bytes().decode("ascii")  # (no text file: its codec would be imported)


@functools.lru_cache(maxsize=16)
def factory_image(signature: str) -> bytes:
    """The factory image (1.0.0, plain smp_svr) signed for ``signature``."""
    resource = _FIRMWARE / f"factory-{signature}.bin"
    if not resource.is_file():
        raise ConfigError(f"mcuboot.signature: no factory image for {signature!r}")
    return resource.read_bytes()


SIGNATURES_FILE = "signatures.txt"
"""In ``smpsim/firmware/``: a line per signed image there, ``name keyhash digest signature``
(hex), written by ``make images`` once ``cryptography`` has verified the signature."""


@functools.cache
def good_signatures() -> frozenset[tuple[bytes, bytes, bytes]]:
    """(SHA-256 of the key, image digest, signature TLV) of every signed image shipped in
    ``smpsim/firmware/``: MCUboot's verdict on these is known to be good without the library
    (``tests/unit/mcuboot/test_signatures.py`` checks each one again)."""
    text = (_FIRMWARE / SIGNATURES_FILE).read_bytes().decode("ascii")
    return frozenset((bytes.fromhex(keyhash), bytes.fromhex(digest), bytes.fromhex(sig))
                     for _, keyhash, digest, sig in (line.split() for line in text.splitlines()
                                                     if line and not line.startswith("#")))
