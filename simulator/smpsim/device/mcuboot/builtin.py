"""smpsim's packaged MCUboot material: insecure test keys and the factory images.

Both are made by ``make images`` (``flash_images/build.py``) and shipped in
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
