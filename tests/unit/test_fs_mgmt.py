"""Group 8, file system: every command, rule and error code, on littlefs (native_sim_udp unless
said: littlefs on 4 blocks of 4 KiB at /lfs1, buf 2048, path length 64)."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any

import cbor2
import pytest

from smpsim.device.flash import PowerLoss
from smpsim.mcumgr.groups.fs_mgmt import dl_chunk_size

from .fs_support import (
    CLOSE,
    FILE,
    HASH,
    READ,
    STATUS,
    SUPPORTED,
    V1,
    WRITE,
    FsBoard,
    err,
    fs_profile,
)

DATA = bytes(range(256)) * 2 + b"oracle-tail"
"""The recorded oracle file (523 bytes)."""


@pytest.fixture
def board() -> FsBoard:
    return FsBoard()


def test_upload_download_status_round_trip(board: FsBoard) -> None:
    assert board.chunk("/lfs1/oracle.bin", 0, DATA[:512], len=523) == {"off": 512}
    assert board.chunk("/lfs1/oracle.bin", 512, DATA[512:]) == {"off": 523}
    assert board.status("/lfs1/oracle.bin") == {"len": 523}  # closed at its length
    assert board.call(READ, FILE, {"name": "/lfs1/oracle.bin", "off": 0}) == {
        "off": 0, "data": DATA, "len": 523}
    assert board.call(READ, FILE, {"name": "/lfs1/oracle.bin", "off": 512}) == {
        "off": 512, "data": b"oracle-tail"}  # len only at offset 0
    for off in (523, 533):
        assert board.call(READ, FILE, {"name": "/lfs1/oracle.bin", "off": off}) == {
            "off": off, "data": b""}


def test_the_answer_is_encoded_as_zephyr_does(board: FsBoard) -> None:
    board.upload("/lfs1/x", b"abc")
    assert board.raw(READ, FILE, {"name": "/lfs1/x", "off": 0})[8:] == bytes.fromhex(
        "bf636f666600646461746143616263636c656e03ff")
    assert board.raw(READ, STATUS, {"name": "/lfs1/x"})[8:] == bytes.fromhex("bf636c656e03ff")
    assert board.raw(WRITE, FILE, {"name": "/lfs1/y", "off": 0, "len": 1})[8:] == \
        bytes.fromhex("bf636f666600ff")
    assert board.raw(WRITE, CLOSE, {})[8:] == b"\xbf\xff"


@pytest.mark.parametrize(("prof", "chunk"), [("native_sim_udp", 2004), ("native_sim_serial_fs",
                                                                        980),
                                             ("native_sim_serial_bigrx", 340),
                                             ("nrf52840dk", 2431)])
def test_download_chunks_fill_the_buffer(prof: str, chunk: int) -> None:
    board = FsBoard(prof)
    data = bytes(i * 7 % 251 for i in range(3000))
    board.upload("/lfs1/d.bin", data, chunk=200)
    first = board.raw(READ, FILE, {"name": "/lfs1/d.bin", "off": 0})
    assert len(cbor2.loads(first[8:])["data"]) == chunk
    assert len(first) <= board.profile.firmware.buf_size
    assert board.download("/lfs1/d.bin") == data


def test_download_chunk_options() -> None:
    assert dl_chunk_size(fs_profile(max_file_size_4gb=True).firmware) == 2048 - 50
    assert dl_chunk_size(fs_profile(dl_chunk_size=100).firmware) == 100
    assert dl_chunk_size(fs_profile(dl_chunk_size=2040).firmware) == 2004  # rounded down


def test_download_of_a_big_file_at_offsets_past_64k() -> None:
    board = FsBoard("esp32c3")  # 192 KiB of storage
    data = hashlib.sha256(b"seed").digest() * 3200  # 102400 bytes
    assert board.upload("/lfs1/big.bin", data, chunk=2000) == {"off": len(data)}
    assert board.download("/lfs1/big.bin") == data
    tail = board.raw(READ, FILE, {"name": "/lfs1/big.bin", "off": 100000})
    assert len(tail) <= board.profile.firmware.buf_size
    assert cbor2.loads(tail[8:]) == {"off": 100000, "data": data[100000:]}


# ------------------------------------------------------------------ upload rules


def test_a_first_chunk_needs_off_zero(board: FsBoard) -> None:
    # No transfer: the file is opened (and created empty), its size taken as the offset.
    assert board.chunk("/lfs1/o2", 5, b"abc") == {**err(11), "len": 0}
    assert board.status("/lfs1/o2") == {"len": 0}
    assert board.raw(WRITE, FILE, {"name": "/lfs1/o2", "off": 5, "data": b"abc"},
                     version=V1)[8:] == bytes.fromhex("bf62726301ff")  # v1: rc 1, len lost


def test_a_gap_ends_the_transfer_and_off_zero_restarts(board: FsBoard) -> None:
    assert board.chunk("/lfs1/o2", 0, b"abc", len=6) == {"off": 3}
    assert board.chunk("/lfs1/o2", 4, b"def") == {**err(11), "len": 3}
    assert board.status("/lfs1/o2") == {"len": 3}  # the gap closed it: 3 bytes committed
    assert board.chunk("/lfs1/o2", 0, b"abc", len=6) == {"off": 3}  # truncated, rewritten
    assert board.chunk("/lfs1/o2", 3, b"def") == {"off": 6}
    assert board.download("/lfs1/o2") == b"abcdef"


def test_resending_off_zero_mid_transfer_follows_zephyr(board: FsBoard) -> None:
    """Zephyr sizes the file with fs_stat, which on littlefs sees only what is committed (0
    here): nothing is truncated and the chunk goes to the end."""
    assert board.chunk("/lfs1/o3", 0, b"abc", len=9) == {"off": 3}
    assert board.chunk("/lfs1/o3", 0, b"abc", len=9) == {"off": 6}
    assert board.chunk("/lfs1/o3", 6, b"def") == {"off": 9}
    assert board.download("/lfs1/o3") == b"abcabcdef"


def test_more_data_than_len_is_taken_and_closes(board: FsBoard) -> None:
    board.upload("/lfs1/o2", b"abcdef")
    assert board.chunk("/lfs1/o2", 0, b"abcdef", len=2) == {"off": 6}
    assert board.status("/lfs1/o2") == {"len": 6}


def test_empty_file_and_chunks_without_data(board: FsBoard) -> None:
    assert board.chunk("/lfs1/empty.bin", 0, b"", len=0) == {"off": 0}
    assert board.status("/lfs1/empty.bin") == {"len": 0}
    board.upload("/lfs1/o2", b"abcdef")
    assert board.chunk("/lfs1/o2", 0, None, len=3) == {"off": 0}  # nothing written or cut
    assert board.status("/lfs1/o2") == {"len": 6}


def test_an_open_upload_is_closed_when_idle(board: FsBoard) -> None:
    assert board.chunk("/lfs1/slow", 0, b"abc", len=6) == {"off": 3}
    assert board.status("/lfs1/slow") == {"len": 0}  # littlefs: not committed yet
    board.device.clock.advance(3.9)
    assert board.status("/lfs1/slow") == {"len": 0}
    board.device.clock.advance(0.2)  # MCUMGR_GRP_FS_FILE_AUTOMATIC_IDLE_CLOSE_TIME: 4 s
    assert board.status("/lfs1/slow") == {"len": 3}
    # a chunk after that starts a new transfer at the committed end
    assert board.chunk("/lfs1/slow", 3, b"def") == {"off": 6}


def test_every_chunk_rearms_the_idle_close(board: FsBoard) -> None:
    assert board.chunk("/lfs1/f", 0, b"a", len=10) == {"off": 1}
    for off in range(1, 4):
        board.device.clock.advance(3.0)
        assert board.chunk("/lfs1/f", off, b"a") == {"off": off + 1}
    assert board.status("/lfs1/f") == {"len": 0}


def test_close_commits_and_forgets_the_transfer(board: FsBoard) -> None:
    assert board.chunk("/lfs1/f", 0, b"abc", len=6) == {"off": 3}
    assert board.call(WRITE, CLOSE, {}) == {}
    assert board.status("/lfs1/f") == {"len": 3}
    assert board.chunk("/lfs1/f", 3, b"def") == {"off": 6}  # picked up at the file's end
    assert board.call(WRITE, CLOSE, b"") == {}  # the payload is not read
    assert board.call(READ, CLOSE, {}) == {"rc": 8}


def test_a_reset_loses_the_open_transfer(board: FsBoard) -> None:
    assert board.chunk("/lfs1/f", 0, b"abc", len=6) == {"off": 3}
    board.device.reset()
    assert board.chunk("/lfs1/f", 3, b"def") == {**err(11), "len": 0}


def test_a_download_ends_an_upload_of_the_same_file(board: FsBoard) -> None:
    assert board.chunk("/lfs1/f", 0, b"abc", len=6) == {"off": 3}
    assert board.call(READ, FILE, {"name": "/lfs1/f", "off": 0}) == {
        "off": 0, "data": b"abc", "len": 3}
    assert board.chunk("/lfs1/f", 3, b"def") == {"off": 6}  # a new transfer


def test_a_download_keeps_the_length_it_started_with(board: FsBoard) -> None:
    board.upload("/lfs1/log", b"x" * 3000, chunk=3000)
    first = board.call(READ, FILE, {"name": "/lfs1/log", "off": 0})
    assert first["len"] == 3000 and len(first["data"]) == 2004
    board.upload("/lfs1/other", b"y")  # another transfer ends this one
    again = board.call(READ, FILE, {"name": "/lfs1/log", "off": 0})
    assert again["len"] == 3000


def test_the_tiny_file_system_fills_up() -> None:
    board = FsBoard()
    board.upload("/lfs1/oracle.bin", DATA)
    answer = board.upload("/lfs1/big.bin", bytes(20000), chunk=1900)
    assert answer == err(10)
    assert board.lines("<err> fs: file write error (-28)")
    assert board.call(WRITE, FILE, {"name": "/lfs1/big.bin", "off": 0, "len": 1, "data": b"z"},
                      version=V1) == {"off": 1}  # the failed transfer was dropped
    assert board.download("/lfs1/oracle.bin") == DATA


def test_upload_takes_the_flash_time() -> None:
    board = FsBoard("nrf52840dk")
    board.chunk("/lfs1/t", 0, bytes(1500), len=3000)
    assert board.last is not None
    # a fresh data block erased (85 ms) and 1500 bytes programmed at 41 us per word
    assert board.last.busy_s >= 0.085 + 1500 / 4 * 41e-6


# ------------------------------------------------------------------ requests and paths


@pytest.mark.parametrize("payload", [
    {"off": 0, "len": 3, "data": b"abc"},  # no name
    {"name": "/lfs1/a", "len": 3, "data": b"abc"},  # no off
    {"name": "/lfs1/a", "off": 0, "data": b"abc"},  # off 0 without len
    {"name": "/lfs1/a", "off": 0xFFFFFFFFFFFFFFFF, "len": 3},  # zcbor's "absent" value
    {"name": "/lfs1/a", "off": 0, "len": 3, "data": "abc"},  # data as text
    {"name": b"/lfs1/a", "off": 0, "len": 3},
    {"name": "/lfs1/a", "off": "0", "len": 3},
    {"name": "/lfs1/a", "off": -1, "len": 3},
])
def test_malformed_uploads(board: FsBoard, payload: dict[str, Any]) -> None:
    assert board.call(WRITE, FILE, payload) == {"rc": 3}


@pytest.mark.parametrize("payload", [{"name": "/lfs1/a"}, {"off": 0}, {"name": 5, "off": 0},
                                     {"name": "/lfs1/a", "off": 0xFFFFFFFFFFFFFFFF}])
def test_malformed_downloads(board: FsBoard, payload: dict[str, Any]) -> None:
    assert board.call(READ, FILE, payload) == {"rc": 3}


def test_empty_payloads(board: FsBoard) -> None:
    for op, cmd in ((WRITE, FILE), (READ, FILE), (READ, STATUS), (READ, HASH)):
        assert board.call(op, cmd, b"") == {"rc": 3}
    assert board.call(READ, SUPPORTED, b"") != {"rc": 3}
    assert board.call(WRITE, CLOSE, b"") == {}


def test_path_length_limit(board: FsBoard) -> None:
    longest = "/lfs1/" + "n" * 58  # MCUMGR_GRP_FS_PATH_LEN 64
    assert board.upload(longest, b"abc") == {"off": 3}
    assert board.status(longest) == {"len": 3}
    assert board.status(longest + "n") == {"rc": 3}
    utf8 = "/lfs1/" + "é" * 29  # 64 bytes in UTF-8
    assert board.status(utf8) == err(3)
    assert board.status(utf8 + "e") == {"rc": 3}
    tight = FsBoard(fs_profile(path_len=10))
    assert tight.status("/lfs1/abcd") == err(3)
    assert tight.status("/lfs1/abcde") == {"rc": 3}


PATHS = [
    # name, upload, download, status (v2 fs errors as the records show them)
    ("oracle.bin", 2, 2, 2),
    ("/nomount/x.bin", 14, 3, 3),
    ("/lfs1", 1, 4, 4),
    ("/lfs1/", 1, 4, 4),
    ("/", 2, 4, 4),  # fs_open: too short a name; fs_stat: the root directory
    ("/lfs1/nodir/x.bin", 14, 3, 3),
    ("/lfs1/missing.txt", None, 3, 3),
    ("/lfs1x", 14, 3, 3),
    ("\0/lfs1/x", 2, 2, 2),  # a C string: empty
]


@pytest.mark.parametrize(("name", "up", "down", "stat"), PATHS)
def test_path_errors(board: FsBoard, name: str, up: int | None, down: int, stat: int) -> None:
    assert board.call(READ, FILE, {"name": name, "off": 0}) == err(down)
    assert board.status(name) == err(stat)
    assert board.call(READ, HASH, {"name": name}) == err(stat)
    upload = board.chunk(name, 0, b"abc", len=3)
    assert upload == ({"off": 3} if up is None else err(up))


def test_path_log_lines(board: FsBoard) -> None:
    board.chunk("oracle.bin", 0, b"abc", len=3)
    board.call(READ, FILE, {"name": "oracle.bin", "off": 0})
    board.chunk("/nomount/x.bin", 0, b"abc", len=3)
    board.status("/nomount/x.bin")
    board.chunk("/lfs1/nodir/x.bin", 0, b"abc", len=3)
    assert [line.split("] ", 1)[1] for line in board.console[-5:]] == [
        "<err> fs: invalid file name!!", "<err> fs: invalid file or dir name!!",
        "<err> fs: mount point not found!!", "<err> fs: mount point not found!!",
        "<err> fs: file open error (-2)"]


def test_v1_translations(board: FsBoard) -> None:
    def v1(cmd: int, op: int, payload: dict[str, Any]) -> Any:
        return board.call(op, cmd, payload, version=V1)
    assert v1(STATUS, READ, {"name": "/lfs1/missing"}) == {"rc": 5}  # not found
    assert v1(STATUS, READ, {"name": "rel"}) == {"rc": 3}  # invalid name
    assert v1(FILE, WRITE, {"name": "/x/y", "off": 0, "len": 1}) == {"rc": 5}  # no mount
    assert v1(STATUS, READ, {"name": "/lfs1"}) == {"rc": 1}  # a directory
    board.upload("/lfs1/f", b"abc")
    assert v1(HASH, READ, {"name": "/lfs1/f", "type": "md5"}) == {"rc": 3}
    assert v1(HASH, READ, {"name": "/lfs1/f", "off": 9}) == {"rc": 1}


# ------------------------------------------------------------------ hash and checksum


def test_hash_and_checksum(board: FsBoard) -> None:
    board.upload("/lfs1/oracle.bin", DATA)
    crc = {"type": "crc32", "len": 523, "output": 3341282507}
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin"}) == crc
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": ""}) == crc
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": "crc32"}) == crc
    assert zlib.crc32(DATA) == 3341282507
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": "sha256"}) == {
        "type": "sha256", "len": 523, "output": hashlib.sha256(DATA).digest()}
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": "sha256", "off": 16,
                                   "len": 32}) == {
        "type": "sha256", "off": 16, "len": 32, "output": hashlib.sha256(DATA[16:48]).digest()}
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "off": 500, "len": 9999}) == {
        "type": "crc32", "off": 500, "len": 23, "output": zlib.crc32(DATA[500:])}
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "off": 0, "len": 1}) == {
        "type": "crc32", "len": 1, "output": zlib.crc32(DATA[:1])}
    assert board.raw(READ, HASH, {"name": "/lfs1/oracle.bin", "type": "sha256"})[8:].startswith(
        bytes.fromhex("bf647479706566736861323536636c656e19020b666f75747075745820"))


def test_hash_errors(board: FsBoard) -> None:
    board.upload("/lfs1/oracle.bin", DATA)
    board.upload("/lfs1/empty", b"")
    assert board.call(WRITE, CLOSE, {}) == {}
    for kind in ("md5", "bogus", "CRC32", "sha"):
        assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": kind}) == err(13)
    assert board.call(READ, HASH, {"name": "/lfs1/missing", "type": "md5"}) == err(13)
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": "sha256abc"}) == \
        {"rc": 3}  # longer than 8
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "len": 0}) == {"rc": 3}
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "off": 10000}) == err(12)
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "off": 523}) == err(12)
    assert board.call(READ, HASH, {"name": "/lfs1/empty"}) == err(16)
    assert board.call(READ, HASH, {"name": "/lfs1/missing"}) == err(3)
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": "crc32\0x"})["type"] \
        == "crc32"  # a C string
    assert board.call(READ, HASH, {"name": "/lfs1/oracle.bin", "type": "\0crc"}) == err(13)


def test_supported_types_follow_the_build() -> None:
    assert FsBoard().call(READ, SUPPORTED, {}) == {"types": {
        "crc32": {"format": 0, "size": 4}, "sha256": {"format": 1, "size": 32}}}
    assert FsBoard().raw(READ, SUPPORTED, {})[8:] == bytes.fromhex(  # as recorded
        "bf657479706573bf656372633332bf66666f726d6174006473697a6504ff66736861323536bf66666f72"
        "6d6174016473697a651820ffffff")
    sha_only = FsBoard(fs_profile(hash_types=("sha256",)))
    assert sha_only.call(READ, SUPPORTED, {}) == {"types": {"sha256": {"format": 1,
                                                                       "size": 32}}}
    sha_only.upload("/lfs1/f", b"abc")
    assert sha_only.call(READ, HASH, {"name": "/lfs1/f"})["type"] == "sha256"
    assert sha_only.call(READ, HASH, {"name": "/lfs1/f", "type": "crc32"}) == err(13)


def test_commands_the_build_leaves_out_answer_enotsup() -> None:
    import dataclasses

    from smpsim.config import load_profile
    prof = load_profile("native_sim_udp")
    prof = dataclasses.replace(prof, firmware=dataclasses.replace(
        prof.firmware, groups={**prof.firmware.groups, "fs": ("file", "close")}))
    board = FsBoard(prof)
    assert board.call(READ, HASH, {"name": "/lfs1/x"}) == {"rc": 8}
    assert board.call(READ, STATUS, {"name": "/lfs1/x"}) == {"rc": 8}
    assert board.chunk("/lfs1/x", 0, b"a", len=1) == {"off": 1}


# ------------------------------------------------------------------ power cuts


def test_files_survive_a_power_cut_in_the_middle_of_an_upload(tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    board = FsBoard("nrf52840dk", flash)
    kept = bytes(range(256)) * 16
    assert board.upload("/lfs1/kept.bin", kept) == {"off": len(kept)}
    assert board.chunk("/lfs1/new.bin", 0, bytes(1024), len=8192) == {"off": 1024}
    board.device.flash.cut_power_before(5)
    frame = board.server  # the next chunk is cut short by the power cut
    with pytest.raises(PowerLoss):
        frame.handle(_upload_frame("/lfs1/new.bin", 1024, bytes(3000)))
    board.device.close()
    after = FsBoard("nrf52840dk", flash)
    assert not after.lines("formatting")
    assert after.download("/lfs1/kept.bin") == kept
    assert after.status("/lfs1/new.bin") == {"len": 0}  # never closed: nothing committed
    assert after.upload("/lfs1/new.bin", b"again") == {"off": 5}


def test_files_survive_a_reset(tmp_path: Path) -> None:
    board = FsBoard("nrf52840dk", tmp_path / "flash.bin")
    board.upload("/lfs1/a.bin", DATA)
    board.device.reset()
    assert board.download("/lfs1/a.bin") == DATA
    assert len(board.lines("can't mount")) == 1  # formatted at the first boot only


def _upload_frame(name: str, off: int, data: bytes) -> bytes:
    from smpsim.mcumgr.header import Header
    body = cbor2.dumps({"name": name, "off": off, "data": data})
    return Header(WRITE, 1, 0, len(body), 8, 1, FILE).pack() + body
