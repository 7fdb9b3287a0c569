"""Our stand-ins for the images of the serial recovery recordings, and the mapping to them.

The recorder's images (``meta.images``) are builds we do not have. Ours are made by imgtool
exactly as the recorder signed its own (``--header-size 0x200 --align 4 --slot-size 0x80000
--load-addr 0x20240000``, no key: a SHA-256 TLV only) over a payload of the recorded size, so
each has the recorded length, header and TLV layout; only the payload, and so the hashes,
differ. ``corrupt`` is our 2.0.0 with the byte at 0x400 flipped, as the recorder made its own.

An upload's image is known from its summary record (``image_sha256``, the recorded file's
SHA-256). Its chunks carry our image's bytes at the recorded offsets and lengths (so every
frame keeps its length), and every recorded hash (TLV hash or file SHA-256) in requests and
answers is replaced by ours (32 bytes for 32 bytes).
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .compare import decode
from .records import HEADER_SIZE, Header, Record, split_unit

IMG, UPLOAD = 1, 1
IMAGE_MAGIC = b"\x3d\xb8\xf3\x96"
CORRUPT_AT = 0x400


@functools.cache
def signed(version: str, payload: int) -> bytes:
    """imgtool's image of ``payload`` pseudo-random bytes, as the recorder signed its own."""
    body = bytes(0x200) + hashlib.shake_256(f"recovery {version}".encode()).digest(payload)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.bin"), Path(tmp, "out.bin")
        src.write_bytes(body)
        subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--version", version,
                        "--header-size", "0x200", "--align", "4",
                        "--slot-size", "0x80000", "--load-addr", "0x20240000",
                        str(src), str(dst)], check=True, capture_output=True)
        return dst.read_bytes()


def tlv_hash(image: bytes) -> bytes:
    """The SHA-256 TLV value of one of our images (its only TLV)."""
    tlvs = int.from_bytes(image[8:10], "little") + int.from_bytes(image[12:16], "little")
    assert image[tlvs:tlvs + 2] == b"\x07\x69" and image[tlvs + 4:tlvs + 6] == b"\x10\x00"
    return image[tlvs + 8:tlvs + 40]


class Images:
    """Ours by recorded name, the hash swaps, and which upload carries which image."""

    def __init__(self, meta: dict[str, Any], records: tuple[Record, ...]) -> None:
        self.by_name: dict[str, bytes] = {}
        self.swaps: dict[bytes, bytes] = {}
        by_file_sha: dict[str, str] = {}
        for name, info in meta.items():
            version = info["version"].removesuffix("+0")
            image = signed(version, info["img_size"])
            if name == "corrupt":
                image = image[:CORRUPT_AT] + bytes([image[CORRUPT_AT] ^ 0xFF]) \
                    + image[CORRUPT_AT + 1:]
            assert len(image) == info["file_len"], f"our {name} has the wrong length"
            assert int.from_bytes(image[16:20], "little") == info["flags"]
            self.by_name[name] = image
            self.swaps.setdefault(bytes.fromhex(info["sha256_tlv"]), tlv_hash(image))
            self.swaps[bytes.fromhex(info["file_sha256"])] = hashlib.sha256(image).digest()
            by_file_sha[info["file_sha256"]] = name
        self.max_chunks: set[str] = set()
        """Uploads whose chunks were as large as the frame allowed (``max``)."""
        self.uploads: dict[str, bytes | None] = {}
        """Case prefix of every upload with a summary (``dfu.upload.v1_2_3``) -> our image it
        carries (None: not one of the recorded images, e.g. junk)."""
        for record in records:
            summary = record.raw.get("summary")
            if summary:
                name = by_file_sha.get(summary.get("image_sha256", ""))
                prefix = record.case.removesuffix(".summary")
                self.uploads[prefix] = self.by_name[name] if name else None
                if summary.get("chunk_data_bytes") == "max":
                    self.max_chunks.add(prefix)

    def upload_of(self, record: Record) -> str | None:
        """The summarized upload a record belongs to (its case prefix), if any."""
        return next((p for p in self.uploads if record.case.startswith(p + ".")), None)

    def image_of(self, record: Record) -> bytes | None:
        """Our image for an upload chunk record, if its upload carries a known image."""
        prefix = self.upload_of(record)
        return None if prefix is None else self.uploads[prefix]

    def bytes_(self, data: bytes) -> bytes:
        """Every recorded 32-byte hash in ``data`` replaced by ours."""
        for old, new in self.swaps.items():
            data = data.replace(old, new)
        return data

    def json(self, value: Any) -> Any:
        """A recorded decoded payload with our hashes."""
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get("hex"), str):
                raw = bytes.fromhex(value["hex"])
                return {"hex": self.swaps.get(raw, raw).hex()}
            return {k: self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value

    def request(self, record: Record) -> bytes:
        """The record's request with our image data and hashes (same length)."""
        assert record.request is not None
        image = self.image_of(record)
        unit = bytearray(record.request)
        pos = 0
        for frame in split_unit(record.request):
            end = pos + HEADER_SIZE + len(frame.payload)
            if image is not None and (frame.header.group, frame.header.cmd) == (IMG, UPLOAD):
                unit[pos:end] = upload_with(bytes(unit[pos:end]), image)
            pos = end
        return self.bytes_(bytes(unit))


def upload_with(raw: bytes, image: bytes) -> bytes:
    """An upload frame whose ``data`` is replaced by ``image``'s bytes at its ``off``."""
    try:
        args = decode(raw[HEADER_SIZE:])
    except ValueError:
        return raw
    if not isinstance(args, dict):
        return raw
    data, off = args.get("data"), args.get("off")
    if not isinstance(data, bytes) or not isinstance(off, int) or off + len(data) > len(image):
        return raw
    ours = image[off:off + len(data)]
    if off == 0:
        assert data[:4] == IMAGE_MAGIC and ours[:0x200] == data[:0x200], \
            "our header region differs from the recorded one"
    assert raw.count(data) == 1
    return raw.replace(data, ours)


def upload_frame(seq: int, off: int, data: bytes, extra: dict[str, Any] | None = None) -> bytes:
    """A v2 upload WRITE as the recorder's client sent later chunks (``off``, ``data``)."""
    import cbor2
    body = cbor2.dumps({**(extra or {}), "off": off, "data": data})
    return Header(1, 2, 0, len(body), IMG, seq, UPLOAD).pack() + body
