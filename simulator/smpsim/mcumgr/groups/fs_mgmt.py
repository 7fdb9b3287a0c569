"""Group 8, file system: upload, download, status, hash/checksum, supported types, close.

Follows Zephyr's ``fs_mgmt.c``: one transfer at a time (``fs_mgmt_ctxt``) whose file stays open
between chunks, in the application's RAM (lost at reset); it is closed when the transfer
reaches its length, on close (8/4), when another transfer starts, or after
``MCUMGR_GRP_FS_FILE_AUTOMATIC_IDLE_CLOSE_TIME`` without a chunk. The file system is littlefs
on the storage partition (:mod:`smpsim.device.fs.vfs`), so its answers (stale sizes of an
open file, disk full, paths) are littlefs's and Zephyr VFS's own.

The idle close is lived lazily: it happens, at its due time, before the next file system call
(so a power cut while idle loses what a real board would have committed meanwhile). Not
modelled: the lock taken per transport (``ctxt->smpt``): every transport is one here, so a
transfer is not reset when another transport touches the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from smpsim.device.errno import EINVAL, ENOENT, EROFS
from smpsim.device.fs.vfs import (
    FS_O_CREATE,
    FS_O_READ,
    FS_O_WRITE,
    FS_SEEK_END,
    File,
    FsError,
    Vfs,
    raw_path,
)
from smpsim.mcumgr.dispatcher import BSTR, TSTR, UINT64, Body, GroupHandlers, Request
from smpsim.mcumgr.errors import FsMgmtErr, GroupError, MgmtErr, MgmtError
from smpsim.records import Frozen, Record, frozen, record

if TYPE_CHECKING:
    from smpsim.config import Firmware, FsConfig
    from smpsim.device.mcu import Device

FS = GroupHandlers("fs")
E = FsMgmtErr

ULLONG_MAX = 0xFFFFFFFFFFFFFFFF
"""zcbor's "key absent" marker for ``off`` and ``len``: the value itself counts as absent."""
IDLE_WORK = "fs_mgmt.file_close_work"
"""The idle-close work item."""
HASH_TYPE_SIZE = 8
"""``HASH_CHECKSUM_TYPE_SIZE``: longest ``type`` string."""
HASH_CHUNK_SIZE = 128
"""``MCUMGR_GRP_FS_CHECKSUM_HASH_CHUNK_SIZE``: the file is hashed this much at a time."""
UPLOAD, DOWNLOAD = "upload", "download"


@frozen
class HashType(Frozen):
    """A registered hash or checksum (``struct fs_mgmt_hash_checksum_group``)."""

    byte_string: bool
    """Output as a byte string (else a number)."""
    size: int
    """Output size in bytes."""
    new: Callable[[], Callable[[bytes | None], bytes | int]]
    """A fresh calculation: call it with data to add, with ``None`` for the result."""


def _crc32() -> Callable[[bytes | None], bytes | int]:
    state = [0]

    def step(data: bytes | None) -> bytes | int:
        if data is not None:
            state[0] = zlib.crc32(data, state[0])  # crc32_ieee_update
        return state[0]
    return step


def _sha256() -> Callable[[bytes | None], bytes | int]:
    digest = hashlib.sha256()

    def step(data: bytes | None) -> bytes | int:
        if data is not None:
            digest.update(data)
        return digest.digest()
    return step


HASH_TYPES = {"crc32": HashType(False, 4, _crc32), "sha256": HashType(True, 32, _sha256)}
"""Every type Zephyr can build in, in registration order (crc32 first)."""


@record
class Transfer(Record):
    """``fs_mgmt_ctxt`` while an upload or download is in progress."""

    state: str
    """:data:`UPLOAD` or :data:`DOWNLOAD`."""
    path: bytes
    """The file's path (as the C string compared with ``strcmp``)."""
    off: int
    """Expected offset of the next chunk."""
    len: int
    """Length of the file (download) or the ``len`` of the first chunk (upload); 0: unknown."""
    file: File
    """The open file."""


def _config(req: Request) -> FsConfig:
    return req.profile.firmware.fs


def _check_name(req: Request, name: str) -> None:
    """An empty name, or one longer than ``MCUMGR_GRP_FS_PATH_LEN``, is refused with rc 3."""
    size = len(name.encode("utf-8", "surrogateescape"))
    if size == 0 or size > _config(req).path_len:
        raise MgmtError(MgmtErr.EINVAL)


def cleanup(device: Device) -> None:
    """``fs_mgmt_cleanup``: forget the transfer and close its file (errors ignored)."""
    transfer: Transfer | None = device.ram.pop(Transfer)
    device.fs.cancel(IDLE_WORK)
    if transfer is not None:
        with contextlib.suppress(FsError):
            transfer.file.close()


def _finish_check(device: Device, transfer: Transfer, idle_s: float) -> None:
    """``fs_mgmt_upload_download_finish_check``: close at the end, else (re)arm the idle
    close."""
    if transfer.len > 0 and transfer.off >= transfer.len:
        cleanup(device)
    else:
        device.fs.call_later(IDLE_WORK, idle_s, lambda: cleanup(device))


def _filelen(vfs: Vfs, name: str) -> int:
    """``fs_mgmt_filelen``: the size of a file, or the group error for what is there."""
    try:
        entry = vfs.stat(name)
    except FsError as exc:
        raise GroupError({-EINVAL: E.FILE_INVALID_NAME,
                          -ENOENT: E.FILE_NOT_FOUND}.get(exc.errno, E.UNKNOWN)) from None
    if entry.is_dir:
        raise GroupError(E.FILE_IS_DIRECTORY)
    return entry.size


def _open_for_read(vfs: Vfs, name: str) -> File:
    try:
        return vfs.open(name, FS_O_READ)
    except FsError as exc:
        raise GroupError({-EINVAL: E.FILE_INVALID_NAME,
                          -ENOENT: E.FILE_NOT_FOUND}.get(exc.errno, E.UNKNOWN)) from None


def _current(device: Device, state: str, path: bytes) -> Transfer | None:
    """The transfer in progress if it is this one; any other is cleaned up."""
    transfer: Transfer | None = device.ram.get(Transfer)
    if transfer is not None and transfer.state == state and transfer.path == path:
        return transfer
    cleanup(device)
    return None


def dl_chunk_size(fw: Firmware) -> int:
    """``MCUMGR_GRP_FS_DL_CHUNK_SIZE``: the most file data one download answer carries, with
    the worst-case CBOR overhead of ``fs_mgmt_config.h`` taken off the buffer."""
    offset_len = 5 if fw.fs.max_file_size_4gb else 3
    overhead = (8 + (9 + 1) + (1 + 3 + offset_len) + (1 + 4 + offset_len) + (1 + 2 + 1)
                + (1 + 3 + offset_len))
    limit = fw.fs.dl_chunk_size
    if limit and limit + overhead <= fw.buf_size:
        return limit
    return max(fw.buf_size - overhead, 1)  # a too-large limit is rounded down to this


@FS.read("file")
def download(req: Request) -> Body:
    """``{"name", "off"}`` -> ``{"off", "data"}``, plus ``"len"`` (the file's size when the
    transfer began) when ``off`` is 0. At or past the end, ``data`` is empty."""
    args = req.fields({"off": UINT64, "name": TSTR})
    off: int = args.get("off", ULLONG_MAX)
    name: str = args.get("name", "")
    if off == ULLONG_MAX:
        raise MgmtError(MgmtErr.EINVAL)
    _check_name(req, name)
    device = req.device
    vfs = device.fs
    vfs.run_due()
    transfer = _current(device, DOWNLOAD, raw_path(name))
    if transfer is None:
        length = _filelen(vfs, name)
        transfer = Transfer(DOWNLOAD, raw_path(name), 0, length, _open_for_read(vfs, name))
        device.ram.put(transfer)
    if off != transfer.off:
        try:
            transfer.file.seek(off)
        except FsError:
            cleanup(device)
            raise GroupError(E.FILE_SEEK_FAILED) from None
        transfer.off = off
    try:
        data = transfer.file.read(dl_chunk_size(req.profile.firmware))
    except FsError:
        cleanup(device)
        raise GroupError(E.FILE_READ_FAILED) from None
    transfer.off += len(data)
    body: dict[str, object] = {"off": off, "data": data}
    if off == 0:
        body["len"] = transfer.len
    _finish_check(device, transfer, _config(req).idle_close_ms / 1000)
    return body


@FS.write("file")
def upload(req: Request) -> Body:
    """``{"name", "off", "data"}``, the first chunk (``off`` 0) with ``len`` -> ``{"off"}``.

    A chunk at another offset than expected gets ``{"err": {8, 11}, "len": expected}`` and ends
    the transfer. ``off`` 0 again restarts the file (truncated at its first data); more data
    than ``len`` is taken.
    """
    args = req.fields({"off": UINT64, "name": TSTR, "data": BSTR, "len": UINT64})
    off: int = args.get("off", ULLONG_MAX)
    length: int = args.get("len", ULLONG_MAX)
    name: str = args.get("name", "")
    data: bytes = args.get("data", b"")
    if off == ULLONG_MAX or (off == 0 and length == ULLONG_MAX):
        raise MgmtError(MgmtErr.EINVAL)
    _check_name(req, name)
    device = req.device
    vfs = device.fs
    vfs.run_due()
    transfer = _current(device, UPLOAD, raw_path(name))
    if transfer is None:
        try:
            file = vfs.open(name, FS_O_CREATE | FS_O_WRITE)
        except FsError as exc:
            raise GroupError({-EINVAL: E.FILE_INVALID_NAME, -ENOENT: E.MOUNT_POINT_NOT_FOUND,
                              -EROFS: E.READ_ONLY_FILESYSTEM}.get(exc.errno, E.UNKNOWN)) from None
        transfer = Transfer(UPLOAD, raw_path(name), 0, 0, file)
        device.ram.put(transfer)
    existing = 0
    try:
        if off == 0:
            transfer.len = length
            existing = _filelen(vfs, name)  # what littlefs has committed of the file
        elif transfer.off == 0:
            transfer.off = _filelen(vfs, name)  # a transfer picked up at the file's end
    except GroupError:
        cleanup(device)
        raise
    if off > 0 and off != transfer.off:
        expected = transfer.off
        cleanup(device)
        raise GroupError(E.FILE_OFFSET_NOT_VALID, extra={"len": expected})
    if data:
        _write_chunk(device, transfer, off, existing, data)
        transfer.off += len(data)
    body = {"off": transfer.off}
    _finish_check(device, transfer, _config(req).idle_close_ms / 1000)
    return body


def _write_chunk(device: Device, transfer: Transfer, off: int, existing: int,
                 data: bytes) -> None:
    file = transfer.file
    step = E.FILE_SEEK_FAILED
    try:
        if off == 0 and existing != 0:
            file.seek(0)
            step = E.FILE_TRUNCATE_FAILED
            file.truncate(0)
        elif file.tell() != off:
            file.seek(0, FS_SEEK_END)  # the offset was checked against the file's end
        step = E.FILE_WRITE_FAILED
        file.write(data)
    except FsError:
        cleanup(device)
        raise GroupError(step) from None


@FS.read("status")
def status(req: Request) -> Body:
    """``{"name"}`` -> ``{"len": size}``."""
    args = req.fields({"name": TSTR})
    name: str = args.get("name", "")
    _check_name(req, name)
    return {"len": _filelen(req.device.fs, name)}


@FS.read("hash")
def hash_checksum(req: Request) -> Body:
    """``{"name", "type", "off", "len"}`` -> ``{"type", "off" (if not 0), "len", "output"}``:
    crc32 as a number, sha256 as bytes, of ``len`` bytes (default: to the end) from ``off``."""
    args = req.fields({"type": TSTR, "name": TSTR, "off": UINT64, "len": UINT64})
    name: str = args.get("name", "")
    type_raw = args.get("type", "").encode("utf-8", "surrogateescape")
    off: int = args.get("off", 0)
    length: int = args.get("len", ULLONG_MAX)
    _check_name(req, name)
    if len(type_raw) > HASH_TYPE_SIZE or length == 0:
        raise MgmtError(MgmtErr.EINVAL)
    config = _config(req)
    built = [t for t in HASH_TYPES if t in config.hash_types]
    if type_raw:
        kind = type_raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    else:
        kind = "crc32" if "crc32" in built else "sha256"
    if kind not in built:
        raise GroupError(E.CHECKSUM_HASH_NOT_FOUND)
    vfs = req.device.fs
    size = _filelen(vfs, name)
    if size <= off:
        raise GroupError(E.FILE_EMPTY if size == 0 else E.FILE_OFFSET_LARGER_THAN_FILE)
    file = _open_for_read(vfs, name)
    step = HASH_TYPES[kind].new()
    hashed = 0
    try:
        if off:
            try:
                file.seek(off)
            except FsError:
                raise GroupError(E.FILE_SEEK_FAILED) from None
        while hashed < length:
            chunk = file.read(min(HASH_CHUNK_SIZE, length - hashed))
            if not chunk:
                break
            step(chunk)
            hashed += len(chunk)
    except FsError:
        raise GroupError(E.UNKNOWN) from None  # the hash function's MGMT_ERR_EUNKNOWN
    finally:
        with contextlib.suppress(FsError):
            file.close()
    body: dict[str, object] = {"type": kind}
    if off:
        body["off"] = off
    body["len"] = hashed
    body["output"] = step(None)
    return body


@FS.read("supported_hashes")
def supported_hashes(req: Request) -> Body:
    """``{"types": {name: {"format": 0 number | 1 bytes, "size": bytes}}}``; the payload is
    ignored."""
    config = _config(req)
    return {"types": {name: {"format": int(info.byte_string), "size": info.size}
                      for name, info in HASH_TYPES.items() if name in config.hash_types}}


@FS.write("close")
def close(req: Request) -> Body:
    """Close the file of the transfer in progress, if any: ``{}``; the payload is ignored."""
    cleanup(req.device)
    return None
