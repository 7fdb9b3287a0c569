"""The MCUboot image format: header, TLVs, the simulated application, hash and signature checks.

An image, as imgtool writes it and as it sits at the start of a slot (little-endian throughout)::

    0                  header (32 bytes) + padding up to ``hdr_size``
    hdr_size           payload (``img_size`` bytes: the application binary)
    hdr_size+img_size  protected TLV block (optional, ``protect_tlv_size`` bytes, info 0x6908)
                       unprotected TLV block (mandatory, info 0x6907)

The SHA-256 in the unprotected block covers ``[0, hdr_size + img_size + protect_tlv_size)``: the
header, the payload and the whole protected block. Signatures sign that digest.

Two readers, because the firmware reads a slot in two ways:

* :func:`read_image` is Zephyr's ``img_mgmt_read_info``: what the img group lists. It trusts the
  hash TLV and never recomputes it, so a corrupt payload still shows up with its hash.
* :func:`validate_image` is MCUboot's ``bootutil_img_validate``: hash recomputed, key looked up by
  its KEYHASH, signature verified. It never raises on garbage.

Both take a ``read(offset, length) -> bytes`` callable over the slot and never read at or past
``limit`` (the slot size). Nothing here does I/O or keeps state.

The header and TLV layout live in :mod:`.header`, the keys in :mod:`.keys`; this module
re-exports both, so ``from smpsim.device.mcuboot.image import ...`` is all a caller needs.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable
from typing import Final, Literal, cast

import cbor2

from smpsim.device.mcuboot.builtin import good_signatures
from smpsim.device.mcuboot.header import (
    COMPRESSED,
    ENCRYPTED,
    ERASED_MAGIC,
    HASH_SIZE,
    IMAGE_HEADER_SIZE,
    IMAGE_MAGIC,
    TLV_HEADER_SIZE,
    TLV_INFO_MAGIC,
    TLV_INFO_SIZE,
    TLV_PROT_INFO_MAGIC,
    ImageError,
    ImageFlag,
    ImageHeader,
    ImageProblem,
    ImageVersion,
    Read,
    Tlv,
    TlvType,
    read_tlv_info,
    walk_tlvs,
)
from smpsim.device.mcuboot.keys import SIGNATURES, KeyRing, PublicKey, Signature, public_key
from smpsim.records import Frozen, frozen

__all__ = [
    "APP_TLV", "COMPRESSED", "ENCRYPTED", "ERASED_MAGIC", "HASH_SIZE", "IMAGE_HEADER_SIZE",
    "IMAGE_MAGIC", "SIGNATURES", "TLV_HEADER_SIZE", "TLV_INFO_MAGIC", "TLV_INFO_SIZE",
    "TLV_PROT_INFO_MAGIC", "AppBehaviour", "Image", "ImageError", "ImageFlag", "ImageHeader",
    "ImageProblem", "ImageVersion", "KeyRing", "PublicKey", "Read", "Signature", "Tlv", "TlvType",
    "Validation", "public_key", "read_image", "validate_image",
]

log = logging.getLogger(__name__)

APP_TLV: Final = 0x53A5
"""smpsim's vendor TLV ("SS"): a CBOR map describing the simulated application, placed in the
protected block by ``imgtool sign --custom-tlv 0x53A5 0x<cbor hex>``. See :class:`AppBehaviour`."""


# -- the simulated application --------------------------------------------------------------------

Boot = Literal["ok", "crash", "hang"]
_BOOTS: Final[tuple[Boot, ...]] = ("ok", "crash", "hang")


@frozen
class AppBehaviour(Frozen):
    """What the application in an image does when it runs, from its :data:`APP_TLV`.

    The TLV value is one CBOR map; unknown keys are ignored so that later versions can add some.
    An image without the TLV (a real Zephyr build) is plain smp_svr: ``AppBehaviour()``.
    """

    confirm: bool = False
    """``"confirm"``: the application marks itself confirmed at boot
    (``boot_write_img_confirmed``), so a test upgrade becomes permanent without a client."""
    boot: Boot = "ok"
    """``"boot"``: ``"ok"`` runs smp_svr; ``"crash"`` faults right after boot (the device resets
    and MCUboot reverts an unconfirmed test image); ``"hang"`` stops answering until the
    watchdog resets it."""
    version: str | None = None
    """``"version"``: the version string the application reports (os info ``r``, the boot
    banner); ``None`` keeps the profile's ``build_version``."""

    @classmethod
    def from_tlv(cls, value: bytes) -> AppBehaviour:
        """Decode an :data:`APP_TLV` value; :class:`ImageError` (``UNKNOWN``) if malformed."""
        stream = io.BytesIO(value)
        try:
            item = cbor2.CBORDecoder(stream).decode()
        except Exception as exc:  # cbor2 raises several kinds on hostile input
            raise ImageError(ImageProblem.UNKNOWN, f"application TLV is not CBOR: {exc}") from None
        if stream.tell() != len(value):
            raise ImageError(ImageProblem.UNKNOWN, "application TLV has bytes after its map")
        if not isinstance(item, dict):
            raise ImageError(ImageProblem.UNKNOWN, "application TLV is not a CBOR map")
        confirm = item.get("confirm", False)
        boot = item.get("boot", "ok")
        version = item.get("version")
        if not isinstance(confirm, bool):
            raise ImageError(ImageProblem.UNKNOWN, "application TLV: 'confirm' must be a bool")
        if boot not in _BOOTS:
            raise ImageError(ImageProblem.UNKNOWN,
                             "application TLV: 'boot' must be 'ok', 'crash' or 'hang'")
        if version is not None and not isinstance(version, str):
            raise ImageError(ImageProblem.UNKNOWN, "application TLV: 'version' must be text")
        return cls(confirm, cast(Boot, boot), version)

    def to_tlv(self) -> bytes:
        """The canonical CBOR value for :data:`APP_TLV` (``version`` left out when ``None``)."""
        item: dict[str, object] = {"confirm": self.confirm, "boot": self.boot}
        if self.version is not None:
            item["version"] = self.version
        return cbor2.dumps(item, canonical=True)


# -- reading a slot as img_mgmt does --------------------------------------------------------------

@frozen
class Image(Frozen):
    """An image as :func:`read_image` found it in a slot."""

    header: ImageHeader
    """The header."""
    tlvs: tuple[Tlv, ...]
    """Every TLV, protected ones first, in slot order."""
    size: int
    """Total length: ``hdr_size + img_size + protected block + unprotected it_tlv_tot``."""
    protected_tlv_size: int
    """Length of the protected block with its info header (0 if none)."""
    unprotected_tlv_size: int
    """``it_tlv_tot`` of the unprotected block (with its info header)."""
    hash: bytes
    """The SHA-256 TLV value: the image hash mcumgr lists (not recomputed)."""
    app: AppBehaviour
    """The simulated application (:data:`APP_TLV`; plain smp_svr without it)."""

    @property
    def version(self) -> ImageVersion:
        """The header's version."""
        return self.header.version

    def tlv(self, tlv_type: int) -> bytes | None:
        """The value of the first TLV of ``tlv_type``, if any."""
        return next((t.value for t in self.tlvs if t.type == tlv_type), None)


def _app(tlvs: Iterable[Tlv]) -> AppBehaviour:
    ordered = sorted(tlvs, key=lambda t: not t.protected)
    value = next((t.value for t in ordered if t.type == APP_TLV), None)
    if value is None:
        return AppBehaviour()
    try:
        return AppBehaviour.from_tlv(value)
    except ImageError as exc:
        log.warning("%s; running the image as plain smp_svr", exc)
        return AppBehaviour()


def read_image(read: Read, limit: int) -> Image:
    """Read the image at the start of a slot of ``limit`` bytes as Zephyr's
    ``img_mgmt_read_info`` does, or raise :class:`ImageError` with img_mgmt's error number.

    The header magic must be :data:`IMAGE_MAGIC` (erased: ``NO_IMAGE``); its sizes must stay
    strictly inside the slot, overflow included (else ``NO_TLVS``). A protected block (0x6908),
    if present, must be as long as the header says and is skipped for the hash search; an
    unprotected block (0x6907) must follow (``NO_TLVS``). Every record must lie inside its block
    and not read erased (``INVALID_TLV``). Exactly one SHA-256 TLV of 32 bytes must be in the
    unprotected block (two: ``TLV_MULTIPLE_HASHES_FOUND``; other length: ``TLV_INVALID_SIZE``;
    none: ``HASH_NOT_FOUND``). The hash is not recomputed.

    Stricter than Zephyr on purpose, where Zephyr would read past a malformed block: records
    are bounded by their own block, and the protected block's size must match the header.
    A malformed :data:`APP_TLV` is logged and the image runs as plain smp_svr.
    """
    if limit < IMAGE_HEADER_SIZE:
        raise ImageError(ImageProblem.FLASH_READ_FAILED,
                         f"a {limit}-byte slot cannot hold an image header")
    header = ImageHeader.parse(read(0, IMAGE_HEADER_SIZE))
    if header.magic == ERASED_MAGIC:
        raise ImageError(ImageProblem.NO_IMAGE, "no image: the header is erased")
    if header.magic != IMAGE_MAGIC:
        raise ImageError(ImageProblem.INVALID_IMAGE_HEADER_MAGIC,
                         f"bad image magic {header.magic:#010x}")
    if header.hashed_size >= limit:
        raise ImageError(ImageProblem.NO_TLVS,
                         f"header sizes ({header.hashed_size:#x} bytes before the TLVs) run "
                         f"past the {limit:#x}-byte slot")
    offset = header.tlv_offset
    if offset + TLV_INFO_SIZE > limit:
        raise ImageError(ImageProblem.NO_TLVS, "no room for TLVs after the payload")
    protected: list[Tlv] = []
    protected_size = 0
    magic, tot = read_tlv_info(read, offset)
    if magic == TLV_PROT_INFO_MAGIC:
        if tot != header.protect_tlv_size or tot < TLV_INFO_SIZE:
            raise ImageError(ImageProblem.INVALID_TLV,
                             f"protected TLV block of {tot} bytes, header says "
                             f"{header.protect_tlv_size}")
        protected = walk_tlvs(read, offset + TLV_INFO_SIZE, offset + tot, protected=True)
        protected_size = tot
        offset += tot
        if offset + TLV_INFO_SIZE > limit:
            raise ImageError(ImageProblem.NO_TLVS, "no TLV block after the protected one")
        magic, tot = read_tlv_info(read, offset)
    if magic != TLV_INFO_MAGIC:
        raise ImageError(ImageProblem.NO_TLVS, f"no TLV info at {offset:#x} (magic {magic:#06x})")
    end = offset + tot
    if tot < TLV_INFO_SIZE or end > limit:
        raise ImageError(ImageProblem.INVALID_TLV,
                         f"TLV block of {tot} bytes at {offset:#x} does not fit the slot")
    unprotected = walk_tlvs(read, offset + TLV_INFO_SIZE, end, protected=False)
    image_hash: bytes | None = None
    for tlv in unprotected:
        if tlv.type != TlvType.SHA256:
            continue
        if len(tlv.value) != HASH_SIZE:
            raise ImageError(ImageProblem.TLV_INVALID_SIZE,
                             f"SHA-256 TLV of {len(tlv.value)} bytes")
        if image_hash is not None:
            raise ImageError(ImageProblem.TLV_MULTIPLE_HASHES_FOUND, "two SHA-256 TLVs")
        image_hash = tlv.value
    if image_hash is None:
        raise ImageError(ImageProblem.HASH_NOT_FOUND, "no SHA-256 TLV")
    tlvs = (*protected, *unprotected)
    return Image(header, tlvs, end, protected_size, tot, image_hash, _app(tlvs))


# -- validating an image as MCUboot does ----------------------------------------------------------

_SIG_TLV: Final[dict[Signature, TlvType]] = {
    "rsa-2048": TlvType.RSA2048_PSS, "rsa-3072": TlvType.RSA3072_PSS,
    "ecdsa-p256": TlvType.ECDSA_SIG, "ed25519": TlvType.ED25519,
}
_ECDSA_SIG_MAX: Final = 128
"""``SIG_BUF_SIZE`` of MCUboot's ECDSA build: longer signature TLVs are refused."""


@frozen
class Validation(Frozen):
    """The outcome of :func:`validate_image`."""

    ok: bool
    """MCUboot would boot (or swap in) this image."""
    reason: str
    """``"ok"``, or why not, in words for the boot log."""
    hashed_bytes: int
    """Bytes run through SHA-256 (0 if rejected before hashing): for the clock."""


def _sig_length_ok(signature: Signature, length: int) -> bool:
    if signature == "ecdsa-p256":
        return length <= _ECDSA_SIG_MAX
    return length == {"rsa-2048": 256, "rsa-3072": 384, "ed25519": 64}[signature]


_VERDICTS: dict[tuple[bytes, bytes, bytes], bool] = {}
"""Signature checks made already, by (key, signature, digest): a fleet's boards boot the same
few signed images at every boot (the emulated time of the check is spent all the same)."""
_VERDICTS_KEPT = 4096


def _verify(key: PublicKey, sig: bytes, digest: bytes) -> bool:
    """Check ``sig`` over the 32-byte ``digest`` as MCUboot's ``bootutil_verify_sig``. The
    signatures of the images smpsim ships were checked when they were made: a board that boots
    only those never imports ``cryptography``, a tenth of ``smpsim run``'s start-up (issue 15)."""
    memo = (key.encoded, sig, digest)
    verdict = _VERDICTS.get(memo)
    if verdict is None:
        verdict = ((key.keyhash, digest, sig) in good_signatures()
                   or check_signature(key, sig, digest))
        if len(_VERDICTS) >= _VERDICTS_KEPT:
            _VERDICTS.clear()
        _VERDICTS[memo] = verdict
    return verdict


def check_signature(key: PublicKey, sig: bytes, digest: bytes) -> bool:
    """Whether ``sig`` is ``key``'s signature of ``digest``, as ``cryptography`` finds it."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    try:
        if isinstance(key.key, rsa.RSAPublicKey):
            key.key.verify(sig, digest,
                           padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                           utils.Prehashed(hashes.SHA256()))
        elif isinstance(key.key, ec.EllipticCurvePublicKey):
            # imgtool --pad-sig appends zeros; the DER length says where the signature ends.
            if len(sig) >= 2 and sig[0] == 0x30 and sig[1] < 0x80:
                sig = sig[:sig[1] + 2]
            key.key.verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        else:
            key.key.verify(sig, digest)
    except (InvalidSignature, ValueError):
        return False
    return True


def _header_problem(header: ImageHeader, limit: int) -> str | None:
    """``boot_check_header_valid`` and the non-bootable check of ``boot_validate_slot``."""
    if header.magic == ERASED_MAGIC:
        return "no image (erased header)"
    if header.magic != IMAGE_MAGIC:
        return f"bad image magic {header.magic:#010x}"
    if header.flags & ENCRYPTED:
        return "encrypted image, and this MCUboot has no encryption support"
    if header.flags & COMPRESSED:
        return "compressed image, and this MCUboot has no decompression support"
    if not header.bootable:
        return "image is marked non-bootable"
    if header.hashed_size >= limit:
        return f"header sizes ({header.hashed_size:#x} bytes before the TLVs) run past the slot"
    return None


def _tlv_area(read: Read, header: ImageHeader, limit: int, max_size: int) -> list[Tlv] | str:
    """Every TLV, as ``bootutil_tlv_iter_begin`` finds the blocks, or why they are unusable."""
    offset = header.tlv_offset
    if offset + TLV_INFO_SIZE > limit:
        return "no TLV info"
    magic, tot = read_tlv_info(read, offset)
    prot_end = offset
    if magic == TLV_PROT_INFO_MAGIC:
        if tot != header.protect_tlv_size or tot < TLV_INFO_SIZE:
            return "protected TLV block size does not match the header"
        prot_end = offset + tot
        if prot_end + TLV_INFO_SIZE > limit:
            return "no TLV info after the protected block"
        magic, tot = read_tlv_info(read, prot_end)
    elif header.protect_tlv_size:
        return "header announces protected TLVs, none found"
    if magic != TLV_INFO_MAGIC or tot < TLV_INFO_SIZE:
        return "no TLV info"
    tlv_end = prot_end + tot
    if tlv_end > max_size:
        return f"image of {tlv_end} bytes exceeds the {max_size} bytes the slot can take"
    if tlv_end > limit:
        return "TLV block runs past the slot"
    try:
        return [*walk_tlvs(read, offset + TLV_INFO_SIZE, prot_end, protected=True),
                *walk_tlvs(read, prot_end + TLV_INFO_SIZE, tlv_end, protected=False)]
    except ImageError as exc:
        return str(exc)


def _tlv_problem(tlvs: list[Tlv], digest: bytes, signature: Signature,
                 keys: KeyRing) -> str | None:
    """The TLV walk of ``bootutil_img_validate``: hash TLVs, then key and signature pairs."""
    hash_ok = False
    sig_ok = False
    sig_reason = "no signature by a trusted key"
    key: PublicKey | None = None
    for tlv in tlvs:
        if tlv.type == TlvType.SHA256:
            if len(tlv.value) != HASH_SIZE:
                return f"SHA-256 TLV of {len(tlv.value)} bytes"
            if tlv.value != digest:
                return "image hash does not match its SHA-256 TLV"
            hash_ok = True
        elif signature == "none":
            continue
        elif tlv.type == TlvType.KEYHASH:
            if len(tlv.value) > HASH_SIZE:
                return f"KEYHASH TLV of {len(tlv.value)} bytes"
            key = keys.find(tlv.value)
        elif tlv.type == _SIG_TLV[signature] and key is not None:
            if not _sig_length_ok(signature, len(tlv.value)):
                return f"{signature} signature TLV of {len(tlv.value)} bytes"
            if key.kind != signature:
                sig_ok, sig_reason = False, f"key is {key.kind}, this MCUboot checks {signature}"
            else:
                sig_ok = _verify(key, tlv.value, digest)
                sig_reason = "signature does not verify"
            key = None
    if not hash_ok:
        return "no SHA-256 TLV"
    if signature != "none" and not sig_ok:
        return sig_reason
    return None


def validate_image(read: Read, limit: int, signature: Signature, keys: KeyRing,
                   max_size: int | None = None) -> Validation:
    """Validate the image at the start of a slot of ``limit`` bytes as MCUboot does before
    booting or swapping it in (``boot_check_header_valid`` + ``bootutil_img_validate``, for an
    MCUboot without encryption or compression support, signed with ``signature``).

    Header: magic, no encryption or compression flag, not ``NON_BOOTABLE``, sizes strictly inside
    the slot. Then SHA-256 over ``[0, hdr_size + img_size + protect_tlv_size)``; the TLV blocks
    must be well formed (a protected block exactly as long as the header says) and the whole image
    no longer than ``max_size`` (``bootutil_max_image_size``; default ``limit``). Every SHA-256
    TLV must be 32 bytes and match. Unless ``signature`` is ``"none"``: a KEYHASH TLV selects a
    key of ``keys`` (an unknown key's signature is ignored) and the signature TLV of the expected
    type that follows it must verify; the last such check decides.

    Never raises on garbage in the slot: the answer is ``ok=False`` with a reason.
    ``ValueError`` for a ``signature`` that is not one of :data:`SIGNATURES`.
    """
    if signature not in SIGNATURES:
        raise ValueError(f"unknown signature type {signature!r}")
    if limit < IMAGE_HEADER_SIZE:
        return Validation(False, "slot smaller than an image header", 0)
    header = ImageHeader.parse(read(0, IMAGE_HEADER_SIZE))
    problem = _header_problem(header, limit)
    if problem is not None:
        return Validation(False, problem, 0)
    hashed = header.hashed_size
    digest = hashlib.sha256(read(0, hashed)).digest()
    tlvs = _tlv_area(read, header, limit, limit if max_size is None else max_size)
    if isinstance(tlvs, str):
        return Validation(False, tlvs, hashed)
    problem = _tlv_problem(tlvs, digest, signature, keys)
    return Validation(problem is None, problem or "ok", hashed)
