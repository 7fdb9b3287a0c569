"""Public keys built into MCUboot, and how an image names the key that signed it (KEYHASH)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Iterable
from typing import Final, Literal

from cryptography.exceptions import UnsupportedAlgorithm
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
    from cryptography.hazmat.primitives import serialization

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


def _encoded(key: PublicKeyObject) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


# --- the common case without cryptography's serialization package ---------------------------
# Every board loads its keys at power-on, and ``cryptography.hazmat.primitives.serialization``
# (with the SSH formats and ciphers its package imports) is 3 % of what ``smpsim run``
# does before it answers (issue 15). A ``PUBLIC KEY`` PEM whose DER is exactly one of MCUboot's
# three key shapes is read here and the key is made from its numbers or bytes; anything else
# (private keys, other key types or curves, DER that is not canonical) goes to the library.

_ED25519_SPKI: Final = bytes.fromhex("302a300506032b6570032100")
"""SubjectPublicKeyInfo of an Ed25519 key up to its 32 bytes (RFC 8410)."""
_P256_SPKI: Final = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004")
"""SubjectPublicKeyInfo of an uncompressed P-256 point up to its x and y (RFC 5480)."""
_RSA_ALGORITHM: Final = bytes.fromhex("300d06092a864886f70d0101010500")
"""AlgorithmIdentifier of rsaEncryption with NULL parameters (RFC 3279)."""


def _der(tag: int, content: bytes) -> bytes:
    """One DER element, its length in the fewest bytes."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # positive: sign bit 0


def _element(data: bytes, at: int, tag: int) -> tuple[bytes, int]:
    """The content of the element of type ``tag`` at ``at``, and where the next one starts."""
    if at + 2 > len(data) or data[at] != tag:
        raise ValueError("unexpected element")
    size, at = data[at + 1], at + 2
    if size & 0x80:
        count = size & 0x7F
        size, at = int.from_bytes(data[at:at + count], "big"), at + count
    if at + size > len(data):
        raise ValueError("truncated element")
    return data[at:at + size], at + size


def _rsa_numbers(spki: bytes) -> tuple[int, int, bytes]:
    """(n, e, DER ``RSAPublicKey``) from a canonical rsaEncryption SubjectPublicKeyInfo."""
    body, end = _element(spki, 0, 0x30)
    bits, _ = _element(body, len(_RSA_ALGORITHM), 0x03)
    if end != len(spki) or not body.startswith(_RSA_ALGORITHM) or bits[:1] != b"\0":
        raise ValueError("not an RSA SubjectPublicKeyInfo")
    pkcs1 = bits[1:]
    numbers, _ = _element(pkcs1, 0, 0x30)
    n_bytes, at = _element(numbers, 0, 0x02)
    e_bytes, _ = _element(numbers, at, 0x02)
    n, e = int.from_bytes(n_bytes, "big", signed=True), int.from_bytes(e_bytes, "big", signed=True)
    canonical = _der(0x30, _der_int(n) + _der_int(e)) if n > 0 and e > 0 else b""
    if _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\0" + canonical)) != spki:
        raise ValueError("not canonical DER")
    return n, e, pkcs1


def _read_public_pem(pem: str) -> PublicKey | None:
    """The key of a ``PUBLIC KEY`` PEM of MCUboot's shapes; ``None`` for the library to read."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----" \
            or lines[-1] != "-----END PUBLIC KEY-----":
        return None
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
        if der.startswith(_ED25519_SPKI) and len(der) == len(_ED25519_SPKI) + 32:
            return PublicKey("ed25519", ed25519.Ed25519PublicKey.from_public_bytes(
                der[len(_ED25519_SPKI):]), der)
        if der.startswith(_P256_SPKI) and len(der) == len(_P256_SPKI) + 64:
            point = der[len(_P256_SPKI) - 1:]
            return PublicKey("ecdsa-p256", ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), point), der)
        if der.startswith(b"\x30") and _RSA_ALGORITHM in der[:24]:
            n, e, pkcs1 = _rsa_numbers(der)
            key = rsa.RSAPublicNumbers(e, n).public_key()
            if key.key_size not in (2048, 3072):
                return None  # the library's path says what is wrong with it
            return PublicKey("rsa-2048" if key.key_size == 2048 else "rsa-3072", key, pkcs1)
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        return None  # the library decides, and says what is wrong
    return None


@functools.lru_cache(maxsize=64)
def public_key(pem: str) -> PublicKey:
    """A :class:`PublicKey` from PEM text (a public key, or a private key to take it from);
    parsed once (every board of a fleet has the same keys)."""
    known = _read_public_pem(pem)
    if known is not None:
        return known
    key = _load_pem(pem)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in (2048, 3072):
            raise ConfigError(f"MCUboot takes RSA-2048 or RSA-3072 keys, not {key.key_size}")
        return PublicKey("rsa-2048" if key.key_size == 2048 else "rsa-3072", key, _encoded(key))
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"MCUboot's ECDSA keys here are P-256, not {key.curve.name}")
        return PublicKey("ecdsa-p256", key, _encoded(key))
    return PublicKey("ed25519", key, _encoded(key))


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


