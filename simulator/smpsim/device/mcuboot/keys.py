"""Public keys built into MCUboot, and how an image names the key that signed it (KEYHASH)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from typing import Final, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from smpsim.device.mcuboot.header import HASH_SIZE
from smpsim.errors import ConfigError
from smpsim.records import Frozen, frozen

Signature = Literal["none", "rsa-2048", "rsa-3072", "ecdsa-p256", "ed25519"]
"""MCUboot's signature build option (``MCUBOOT_SIGNATURE_TYPE_*``); ``none`` checks the hash
only. Also the kind of a key in a :class:`KeyRing`."""
SIGNATURES: Final[tuple[Signature, ...]] = ("none", "rsa-2048", "rsa-3072", "ecdsa-p256",
                                            "ed25519")

PublicKeyObject = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@frozen
class PublicKey(Frozen):
    """A public key built into MCUboot."""

    kind: Signature
    """``rsa-2048``, ``rsa-3072``, ``ecdsa-p256`` or ``ed25519``."""
    key: PublicKeyObject
    """The key, for ``cryptography``."""
    encoded: bytes
    """The bytes MCUboot embeds (``imgtool getpub``): DER PKCS#1 ``RSAPublicKey`` for RSA, DER
    ``SubjectPublicKeyInfo`` for EC and Ed25519."""

    @property
    def keyhash(self) -> bytes:
        """SHA-256 of :attr:`encoded`: the KEYHASH TLV value (``imgtool getpubhash``)."""
        return hashlib.sha256(self.encoded).digest()


def _load_pem(pem: str) -> PublicKeyObject:
    data = pem.encode()
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            public = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"not a PEM key: {exc}") from None
    if isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
                  | ed25519.Ed25519PublicKey):
        return public
    raise ConfigError(f"unsupported key type {type(public).__name__}")


@functools.lru_cache(maxsize=64)
def public_key(pem: str) -> PublicKey:
    """A :class:`PublicKey` from PEM text (a public key, or a private key to take it from);
    parsed once (every board of a fleet has the same keys)."""
    key = _load_pem(pem)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in (2048, 3072):
            raise ConfigError(f"MCUboot takes RSA-2048 or RSA-3072 keys, not {key.key_size}")
        encoded = key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.PKCS1)
        return PublicKey("rsa-2048" if key.key_size == 2048 else "rsa-3072", key, encoded)
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"MCUboot's ECDSA keys here are P-256, not {key.curve.name}")
        return PublicKey("ecdsa-p256", key, spki)
    return PublicKey("ed25519", key, spki)


class KeyRing:
    """The public keys built into MCUboot (``bootutil_keys[]``), in order."""

    def __init__(self, pems: Iterable[str] = ()) -> None:
        self.keys: tuple[PublicKey, ...] = tuple(public_key(pem) for pem in pems)
        """The keys, in the order given."""

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, keyhash: bytes) -> PublicKey | None:
        """The first key whose hash starts with ``keyhash`` (``bootutil_find_key`` compares only
        the TLV's length, at most 32 bytes), or ``None``."""
        if len(keyhash) > HASH_SIZE:
            return None
        return next((k for k in self.keys if k.keyhash[:len(keyhash)] == keyhash), None)


