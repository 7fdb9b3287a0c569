"""Public keys built into MCUboot, and how an image names the key that signed it (KEYHASH)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Literal

from smpsim.device.mcuboot.header import HASH_SIZE
from smpsim.errors import ConfigError
from smpsim.records import Frozen, frozen

if TYPE_CHECKING:
    from typing import TypeAlias

    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    PublicKeyObject: TypeAlias = (rsa.RSAPublicKey | ec.EllipticCurvePublicKey
                                  | ed25519.Ed25519PublicKey)

Signature = Literal["none", "rsa-2048", "rsa-3072", "ecdsa-p256", "ed25519"]
"""MCUboot's signature build option (``MCUBOOT_SIGNATURE_TYPE_*``); ``none`` checks the hash
only. Also the kind of a key in a :class:`KeyRing`."""
SIGNATURES: Final[tuple[Signature, ...]] = ("none", "rsa-2048", "rsa-3072", "ecdsa-p256",
                                            "ed25519")

@frozen
class PublicKey(Frozen):
    """A public key built into MCUboot."""

    kind: Signature
    """``rsa-2048``, ``rsa-3072``, ``ecdsa-p256`` or ``ed25519``."""
    encoded: bytes
    """The bytes MCUboot embeds (``imgtool getpub``): DER PKCS#1 ``RSAPublicKey`` for RSA, DER
    ``SubjectPublicKeyInfo`` for EC and Ed25519."""

    @property
    def keyhash(self) -> bytes:
        """SHA-256 of :attr:`encoded`: the KEYHASH TLV value (``imgtool getpubhash``)."""
        return hashlib.sha256(self.encoded).digest()

    @functools.cached_property
    def key(self) -> PublicKeyObject:
        """The key for ``cryptography``, made when a signature is first checked with it: a
        board that boots only images whose verdicts are known never imports ``cryptography``
        (see :func:`smpsim.device.mcuboot.image.known_verdict`)."""
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        if self.kind == "ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(self.encoded[len(_ED25519_SPKI):])
        if self.kind == "ecdsa-p256":
            return ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), self.encoded[len(_P256_SPKI) - 1:])
        n, e = _rsa_pkcs1_numbers(self.encoded)
        return rsa.RSAPublicNumbers(e, n).public_key()


def _load_pem(pem: str) -> PublicKeyObject:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

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
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


# --- the common case without cryptography ----------------------------------------------------
# Every board loads its keys at power-on, and ``cryptography`` is a tenth of what ``smpsim run``
# does before it answers (issue 15). A ``PUBLIC KEY`` PEM whose DER is exactly one of MCUboot's
# three key shapes is read here, with the checks the library makes when it loads such a key
# (a P-256 point on the curve, an RSA exponent it takes); anything else (private keys, other key
# types or curves, DER that is not canonical, a key the library refuses) goes to the library.

_ED25519_SPKI: Final = bytes.fromhex("302a300506032b6570032100")
"""SubjectPublicKeyInfo of an Ed25519 key up to its 32 bytes (RFC 8410)."""
_P256_SPKI: Final = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004")
"""SubjectPublicKeyInfo of an uncompressed P-256 point up to its x and y (RFC 5480)."""
_RSA_ALGORITHM: Final = bytes.fromhex("300d06092a864886f70d0101010500")
"""AlgorithmIdentifier of rsaEncryption with NULL parameters (RFC 3279)."""
_P256_P: Final = 2**256 - 2**224 + 2**192 + 2**96 - 1
_P256_B: Final = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
"""P-256's field prime and curve coefficient b; a is -3 (SEC 2 v2, section 2.4.2:
https://www.secg.org/sec2-v2.pdf)."""


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


def _rsa_pkcs1_numbers(pkcs1: bytes) -> tuple[int, int]:
    """(n, e) of a DER ``RSAPublicKey``."""
    numbers, _ = _element(pkcs1, 0, 0x30)
    n_bytes, at = _element(numbers, 0, 0x02)
    e_bytes, _ = _element(numbers, at, 0x02)
    return int.from_bytes(n_bytes, "big", signed=True), int.from_bytes(e_bytes, "big", signed=True)


def _rsa_numbers(spki: bytes) -> tuple[int, int, bytes]:
    """(n, e, DER ``RSAPublicKey``) from a canonical rsaEncryption SubjectPublicKeyInfo."""
    body, end = _element(spki, 0, 0x30)
    bits, _ = _element(body, len(_RSA_ALGORITHM), 0x03)
    if end != len(spki) or not body.startswith(_RSA_ALGORITHM) or bits[:1] != b"\0":
        raise ValueError("not an RSA SubjectPublicKeyInfo")
    pkcs1 = bits[1:]
    n, e = _rsa_pkcs1_numbers(pkcs1)
    canonical = _der(0x30, _der_int(n) + _der_int(e)) if n > 0 and e > 0 else b""
    if _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\0" + canonical)) != spki:
        raise ValueError("not canonical DER")
    return n, e, pkcs1


def _on_p256(point: bytes) -> bool:
    """Whether the 64 bytes x || y are a point of P-256 (y^2 = x^3 - 3x + b mod p)."""
    x, y = int.from_bytes(point[:32], "big"), int.from_bytes(point[32:], "big")
    return x < _P256_P and y < _P256_P and (y * y - x * x * x + 3 * x - _P256_B) % _P256_P == 0


def _read_public_pem(pem: str) -> PublicKey | None:
    """The key of a ``PUBLIC KEY`` PEM of MCUboot's shapes; ``None`` for the library to read."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----" \
            or lines[-1] != "-----END PUBLIC KEY-----":
        return None
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
        if der.startswith(_ED25519_SPKI) and len(der) == len(_ED25519_SPKI) + 32:
            return PublicKey("ed25519", der)  # (the library takes any 32 bytes)
        if der.startswith(_P256_SPKI) and len(der) == len(_P256_SPKI) + 64:
            return PublicKey("ecdsa-p256", der) if _on_p256(der[len(_P256_SPKI):]) else None
        if der.startswith(b"\x30") and _RSA_ALGORITHM in der[:24]:
            n, e, pkcs1 = _rsa_numbers(der)
            if n.bit_length() not in (2048, 3072) or not (3 <= e < n and e & 1):
                return None  # the library's path says what is wrong with it
            return PublicKey("rsa-2048" if n.bit_length() == 2048 else "rsa-3072", pkcs1)
    except (ValueError, binascii.Error):
        return None  # the library decides, and says what is wrong
    return None


@functools.lru_cache(maxsize=64)
def public_key(pem: str) -> PublicKey:
    """A :class:`PublicKey` from PEM text (a public key, or a private key to take it from);
    parsed once (every board of a fleet has the same keys)."""
    known = _read_public_pem(pem)
    if known is not None:
        return known
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = _load_pem(pem)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in (2048, 3072):
            raise ConfigError(f"MCUboot takes RSA-2048 or RSA-3072 keys, not {key.key_size}")
        return PublicKey("rsa-2048" if key.key_size == 2048 else "rsa-3072", _encoded(key))
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"MCUboot's ECDSA keys here are P-256, not {key.curve.name}")
        return PublicKey("ecdsa-p256", _encoded(key))
    return PublicKey("ed25519", _encoded(key))


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


