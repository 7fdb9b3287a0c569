"""The MCUboot image header and TLV records: constants, enums and their wire layout.

Everything here is little-endian and described field by field; :mod:`.image` builds on it (and
re-exports it), so import from there.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from enum import IntEnum, IntFlag
from typing import Final

from smpsim.errors import SmpsimError
from smpsim.records import Frozen, frozen

Read = Callable[[int, int], bytes]
"""``read(offset, length) -> bytes`` over a slot, offsets relative to the image start."""

IMAGE_MAGIC: Final = 0x96F3B83D
"""``ih_magic`` of a v2 image (on flash ``3d b8 f3 96``)."""
ERASED_MAGIC: Final = 0xFFFFFFFF
"""What ``ih_magic`` reads on an erased slot."""
IMAGE_HEADER_SIZE: Final = 32
"""``sizeof(struct image_header)``."""
TLV_INFO_MAGIC: Final = 0x6907
"""``IMAGE_TLV_INFO_MAGIC``: starts the unprotected TLV block."""
TLV_PROT_INFO_MAGIC: Final = 0x6908
"""``IMAGE_TLV_PROT_INFO_MAGIC``: starts the protected TLV block."""
TLV_INFO_SIZE: Final = 4
"""``sizeof(struct image_tlv_info)``."""
TLV_HEADER_SIZE: Final = 4
"""``sizeof(struct image_tlv)``: type and length before each value."""
HASH_SIZE: Final = 32
"""``IMAGE_HASH_LEN``: bytes of a SHA-256 TLV."""


class TlvType(IntEnum):
    """TLV types of ``bootutil/image.h`` (imgtool uses the same numbers)."""

    KEYHASH = 0x01
    """SHA-256 of the signing public key as MCUboot embeds it (see :class:`KeyRing`)."""
    PUBKEY = 0x02
    """The whole public key (``MCUBOOT_HW_KEY`` builds)."""
    SHA256 = 0x10
    """SHA-256 of header, payload and protected TLVs: the image hash mcumgr shows."""
    SHA384 = 0x11
    """SHA-384 image hash (ECDSA P-384 builds)."""
    SHA512 = 0x12
    """SHA-512 image hash."""
    RSA2048_PSS = 0x20
    """RSA-2048 PSS signature of the digest (256 bytes)."""
    ECDSA224 = 0x21
    """Obsolete P-224 signature; MCUboot no longer supports it."""
    ECDSA_SIG = 0x22
    """DER ECDSA signature of the digest (P-256 or P-384; about 70-72 bytes for P-256)."""
    RSA3072_PSS = 0x23
    """RSA-3072 PSS signature of the digest (384 bytes)."""
    ED25519 = 0x24
    """Ed25519 signature with the 32-byte digest as the message (64 bytes)."""
    SIG_PURE = 0x25
    """``01``: the signature covers the image itself, not its digest."""
    ENC_RSA2048 = 0x30
    """AES key wrapped with RSA-OAEP."""
    ENC_KW = 0x31
    """AES key wrapped with AES-KW."""
    ENC_EC256 = 0x32
    """AES key by ECIES-P256."""
    ENC_X25519 = 0x33
    """AES key by ECIES-X25519 (HMAC/HKDF SHA-256)."""
    ENC_X25519_SHA512 = 0x34
    """AES key by ECIES-X25519 (HMAC/HKDF SHA-512)."""
    DEPENDENCY = 0x40
    """Image index (u8), 3 pad bytes and the minimum version (8 bytes) of another image."""
    SEC_CNT = 0x50
    """Security counter (u32) for hardware rollback protection."""
    BOOT_RECORD = 0x60
    """CBOR measured-boot record."""
    DECOMP_SIZE = 0x70
    """Decompressed payload size (u32)."""
    DECOMP_SHA = 0x71
    """Hash of the decompressed image."""
    DECOMP_SIGNATURE = 0x72
    """Signature of the decompressed image."""
    COMP_DEC_SIZE = 0x73
    """Compressed and decrypted size."""
    UUID_VID = 0x74
    """Vendor UUID (16 bytes)."""
    UUID_CID = 0x75
    """Device class UUID (16 bytes)."""


class ImageFlag(IntFlag):
    """``ih_flags`` bits (``IMAGE_F_*``)."""

    PIC = 0x1
    """Position independent (not supported)."""
    ENCRYPTED_AES128 = 0x4
    """Payload encrypted with AES-128-CTR."""
    ENCRYPTED_AES256 = 0x8
    """Payload encrypted with AES-256-CTR."""
    NON_BOOTABLE = 0x10
    """Not a bootable application (split image)."""
    RAM_LOAD = 0x20
    """Copied to RAM at ``load_addr`` before running."""
    ROM_FIXED = 0x100
    """``load_addr`` is the flash address the image was linked for."""
    COMPRESSED_LZMA1 = 0x200
    """Payload compressed with LZMA1."""
    COMPRESSED_LZMA2 = 0x400
    """Payload compressed with LZMA2."""
    COMPRESSED_ARM_THUMB_FLT = 0x800
    """ARM Thumb filter applied before compression."""


ENCRYPTED: Final = ImageFlag.ENCRYPTED_AES128 | ImageFlag.ENCRYPTED_AES256
COMPRESSED: Final = (ImageFlag.COMPRESSED_LZMA1 | ImageFlag.COMPRESSED_LZMA2
                     | ImageFlag.COMPRESSED_ARM_THUMB_FLT)


class ImageProblem(IntEnum):
    """Why a slot holds no readable image: img_mgmt's group error numbers (``IMG_MGMT_ERR_*``),
    repeated here because ``device/`` never imports ``mcumgr/``."""

    UNKNOWN = 1
    """Anything else (a malformed application TLV)."""
    NO_IMAGE = 3
    """The header reads erased."""
    NO_TLVS = 4
    """No unprotected TLV block where the header says it is (or the header's sizes run past the
    slot, where Zephyr's read of the TLV info would fail the same way)."""
    INVALID_TLV = 5
    """A TLV record overruns its block, reads erased (``ff``/``ffff``), or a block's size is
    inconsistent."""
    TLV_MULTIPLE_HASHES_FOUND = 6
    """Two SHA-256 TLVs."""
    TLV_INVALID_SIZE = 7
    """A SHA-256 TLV that is not 32 bytes long or runs past its block."""
    HASH_NOT_FOUND = 8
    """No SHA-256 TLV."""
    FLASH_READ_FAILED = 11
    """The slot is smaller than an image header."""
    INVALID_IMAGE_HEADER_MAGIC = 23
    """The header magic is neither erased nor ``IMAGE_MAGIC``."""


class ImageError(SmpsimError):
    """A slot that :func:`read_image` cannot read as an image; ``code`` is img_mgmt's number."""

    def __init__(self, code: ImageProblem, message: str) -> None:
        super().__init__(message)
        self.code = code
        """The img group error number, as Zephyr's ``img_mgmt_read_info`` returns it."""


# -- version and header ---------------------------------------------------------------------------

@functools.total_ordering
@frozen
class ImageVersion(Frozen):
    """``struct image_version``: 8 bytes at header offset 20.

    Ordered and compared as img_mgmt and MCUboot do by default: on (major, minor, revision) only;
    ``build`` counts only when the caller asks (``*_VERSION_CMP_USE_BUILD_NUMBER``) through
    :meth:`key`. Two versions that differ only in ``build`` are therefore equal.
    """

    major: int
    """``iv_major`` (u8)."""
    minor: int = 0
    """``iv_minor`` (u8)."""
    revision: int = 0
    """``iv_revision`` (u16)."""
    build: int = 0
    """``iv_build_num`` (u32)."""

    @classmethod
    def parse(cls, text: str) -> ImageVersion:
        """``maj[.min[.rev[+build]]]`` as imgtool ``--version`` takes it."""
        main, _, build = text.partition("+")
        parts = main.split(".")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts) or (
                build and not build.isdigit()):
            raise ValueError(f"not an image version: {text!r}")
        numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
        return cls(numbers[0], numbers[1], numbers[2], int(build or 0))

    def key(self, use_build: bool = False) -> tuple[int, ...]:
        """The tuple versions are ordered by; with ``use_build`` the build number counts too."""
        base = (self.major, self.minor, self.revision)
        return (*base, self.build) if use_build else base

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.revision}"
        return f"{text}.{self.build}" if self.build else text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageVersion):
            return NotImplemented
        return self.key() == other.key()

    def __lt__(self, other: ImageVersion) -> bool:
        return self.key() < other.key()

    def __hash__(self) -> int:
        return hash(self.key())


_HEADER = struct.Struct("<IIHHIIBBHII")
"""magic, load_addr, hdr_size, protect_tlv_size, img_size, flags, then the version (major,
minor, revision, build) and the padding word: all little-endian."""
_TLV_HEAD = struct.Struct("<HH")
"""A TLV info header (``it_magic``, ``it_tlv_tot``) or record header (``it_type``, ``it_len``)."""


@frozen
class ImageHeader(Frozen):
    """``struct image_header``, the 32 bytes at the start of an image.

    Equality follows :class:`ImageVersion`, which ignores the build number."""

    magic: int
    """``ih_magic`` (u32 @0): :data:`IMAGE_MAGIC`, or :data:`ERASED_MAGIC` on an empty slot."""
    load_addr: int
    """``ih_load_addr`` (u32 @4): RAM-load or ROM-fixed address, else 0."""
    hdr_size: int
    """``ih_hdr_size`` (u16 @8): bytes before the payload (Zephyr: ``CONFIG_ROM_START_OFFSET``)."""
    protect_tlv_size: int
    """``ih_protect_tlv_size`` (u16 @10): the whole protected TLV block with its info header;
    0 when there is none."""
    img_size: int
    """``ih_img_size`` (u32 @12): payload bytes."""
    flags: ImageFlag
    """``ih_flags`` (u32 @16)."""
    version: ImageVersion
    """``ih_ver`` (8 bytes @20). Bytes 28-31 are padding, zero."""

    @classmethod
    def parse(cls, data: bytes) -> ImageHeader:
        """Decode the first 32 bytes of ``data`` (which must hold at least that many)."""
        if len(data) < IMAGE_HEADER_SIZE:
            raise ValueError(f"an image header is {IMAGE_HEADER_SIZE} bytes, got {len(data)}")
        return _parse_header(bytes(data[:IMAGE_HEADER_SIZE]))

    def build(self) -> bytes:
        """The 32 header bytes."""
        v = self.version
        return _HEADER.pack(self.magic, self.load_addr, self.hdr_size, self.protect_tlv_size,
                            self.img_size, int(self.flags), v.major, v.minor, v.revision,
                            v.build, 0)

    @property
    def bootable(self) -> bool:
        """``NON_BOOTABLE`` is clear (img_mgmt's ``bootable`` in a state read)."""
        return not self.flags & ImageFlag.NON_BOOTABLE

    @property
    def tlv_offset(self) -> int:
        """Where the TLV blocks start: ``hdr_size + img_size``."""
        return self.hdr_size + self.img_size

    @property
    def hashed_size(self) -> int:
        """Bytes the image hash covers: ``hdr_size + img_size + protect_tlv_size``."""
        return self.hdr_size + self.img_size + self.protect_tlv_size



@frozen
class Tlv(Frozen):
    """One TLV record: ``u16 it_type``, ``u16 it_len``, then ``it_len`` value bytes."""

    type: int
    """``it_type``: a :class:`TlvType` or a vendor number such as :data:`APP_TLV`."""
    value: bytes
    """The value."""
    protected: bool
    """In the protected block (covered by the hash and signature)."""



@functools.lru_cache(maxsize=1024)
def _parse_header(data: bytes) -> ImageHeader:
    # Every boot of every board of a fleet reads the same few headers: decode each once.
    magic, load_addr, hdr_size, protect_tlv_size, img_size, flags, major, minor, revision, \
        build, _pad = _HEADER.unpack(data)
    return ImageHeader(magic, load_addr, hdr_size, protect_tlv_size, img_size, ImageFlag(flags),
                       ImageVersion(major, minor, revision, build))


def read_tlv_info(read: Read, offset: int) -> tuple[int, int]:
    """``(it_magic, it_tlv_tot)`` of the TLV info header at ``offset``."""
    magic, tot = _TLV_HEAD.unpack(read(offset, TLV_INFO_SIZE))
    return magic, tot


def walk_tlvs(read: Read, start: int, end: int, protected: bool) -> list[Tlv]:
    """The records of one TLV block ``[start, end)``; each must lie wholly inside it, else
    :class:`ImageError` (``INVALID_TLV``, or ``TLV_INVALID_SIZE`` for an unprotected SHA-256)."""
    tlvs: list[Tlv] = []
    pos = start
    while pos < end:
        if end - pos < TLV_HEADER_SIZE:
            raise ImageError(ImageProblem.INVALID_TLV, f"TLV header at {pos:#x} overruns its block")
        tlv_type, length = _TLV_HEAD.unpack(read(pos, TLV_HEADER_SIZE))
        if tlv_type in (0xFF, 0xFFFF) and length == 0xFFFF:
            raise ImageError(ImageProblem.INVALID_TLV, f"erased TLV record at {pos:#x}")
        if length > end - pos - TLV_HEADER_SIZE:
            code = (ImageProblem.TLV_INVALID_SIZE
                    if tlv_type == TlvType.SHA256 and not protected else ImageProblem.INVALID_TLV)
            raise ImageError(code, f"TLV {tlv_type:#x} at {pos:#x} overruns its block")
        tlvs.append(Tlv(tlv_type, read(pos + TLV_HEADER_SIZE, length), protected))
        pos += TLV_HEADER_SIZE + length
    return tlvs
