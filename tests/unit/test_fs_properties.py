"""Property tests: whatever path a client sends, only littlefs inside the storage partition is
touched. No host file is opened, created, removed or listed; no flash byte outside the storage
partition changes; every request is answered with one well-formed frame."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpsim.device.fs.vfs import FS_O_CREATE, FS_O_WRITE, FsError
from smpsim.device.shell.dummy import execute
from smpsim.mcumgr.codec import encode
from smpsim.mcumgr.header import Header

from .fs_support import CLOSE, FILE, HASH, READ, STATUS, WRITE, FsBoard

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

_HOST_EVENTS = ("open", "os.", "shutil.", "glob.", "pathlib.", "tempfile.", "subprocess.",
                "io.open_code", "mmap.")
"""Audit event prefixes that would mean the host's file system is being reached."""

_watch: list[list[tuple[str, Any]]] = []
"""While a list is on this stack, host file system events are appended to it."""


def _hook(event: str, args: Any) -> None:
    if _watch and event.startswith(_HOST_EVENTS):
        _watch[-1].append((event, args))


sys.addaudithook(_hook)  # audit hooks cannot be removed; it records only while watched


@contextmanager
def host_untouched() -> Iterator[None]:
    """Fail if anything inside reaches the host's file system."""
    seen: list[tuple[str, Any]] = []
    _watch.append(seen)
    try:
        yield
    finally:
        _watch.pop()
    assert seen == [], f"the host file system was reached: {seen[:5]}"


def test_the_watch_sees_host_access(tmp_path: Path) -> None:
    """The audit hook is live: a host file operation inside the watch fails the check."""
    with pytest.raises(AssertionError, match="host file system"), host_untouched():
        (tmp_path / "x").write_text("x")
    with pytest.raises(AssertionError, match="host file system"), host_untouched():
        os.listdir(tmp_path)


HOSTILE = st.sampled_from([
    "/etc/passwd", "/tmp", "/tmp/smpsim-probe", "../../../../etc/passwd", "/lfs1/../../etc/passwd",
    "/lfs1/../lfs1/x", "/lfs1/./x", "/lfs1//x", "/lfs1/.", "/lfs1/..", "//lfs1/x", "~/x",
    "/proc/self/environ", "/dev/null", "C:\\Windows\\x", "/lfs1/x\0/../../etc/passwd",
    "\0", "/", "", ".", "..", "/lfs1/" + "a" * 58, "/lfs1/" + "a" * 59, "/lfs1/" + "é" * 40,
    "/lfs1/dir/../x", "/lfs1/\udcff\udcfe", "/lfs1/\n\r\t", "/lfs1/*", "/lfs1/%s%n",
])
PATHS = (HOSTILE
         | st.text(alphabet=st.sampled_from("/.\0ab~\\:é"), max_size=80).map(lambda s: s)
         | st.binary(max_size=70).map(lambda b: b.decode("utf-8", "surrogateescape"))
         | st.text(max_size=300)
         | st.builds(lambda a, b: f"/lfs1/{a}/{b}", st.text(max_size=20), st.text(max_size=20)))


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> FsBoard:
    flash = tmp_path_factory.mktemp("fsprop") / "flash.bin"  # a real flash file: mmap'ed once
    board = FsBoard("nrf52840dk", flash)
    board.upload("/lfs1/known.bin", b"known")
    for command in ("ls", "cat"):  # imports done before anything is watched
        execute(board.device, ["fs", command, "/lfs1/known.bin"])
    return board


def _outside_storage(board: FsBoard) -> bytes:
    area = board.device.partitions.get("storage")
    assert area is not None
    flash = board.device.flash
    return flash.read(0, area.offset) + flash.read(area.offset + area.size,
                                                    flash.size - area.offset - area.size)


def _answer(board: FsBoard, op: int, cmd: int, payload: dict[str, Any]) -> dict[str, Any]:
    body = encode(payload)  # smpsim's own encoder: text with any bytes (surrogate escapes)
    reply = board.server.handle(Header(op, 1, 0, len(body), 8, 3, cmd).pack() + body)
    assert len(reply.frames) == 1
    decoded = cbor2.loads(reply.frames[0][8:])
    assert isinstance(decoded, dict)
    return decoded


@PROPERTY
@given(path=PATHS, data=st.binary(max_size=64), off=st.integers(0, 2**64 - 1))
def test_paths_only_ever_reach_littlefs(board: FsBoard, path: str, data: bytes,
                                       off: int) -> None:
    before = _outside_storage(board)
    with host_untouched():
        answers = [
            _answer(board, WRITE, FILE, {"name": path, "off": 0, "len": len(data),
                                         "data": data}),
            _answer(board, WRITE, FILE, {"name": path, "off": off, "data": data}),
            _answer(board, READ, FILE, {"name": path, "off": 0}),
            _answer(board, READ, FILE, {"name": path, "off": off}),
            _answer(board, READ, STATUS, {"name": path}),
            _answer(board, READ, HASH, {"name": path, "type": "sha256"}),
            _answer(board, WRITE, CLOSE, {}),
        ]
        for command in ("ls", "cat", "cd", "mkdir", "rm", "statvfs"):
            execute(board.device, ["fs", command, path])
        for call in (board.device.fs.mkdir, board.device.fs.unlink):
            with suppress(FsError):
                call(path)
    for answer in answers:
        assert set(answer) <= {"off", "data", "len", "err", "rc", "type", "output"}
    assert _outside_storage(board) == before
    assert board.status("/lfs1/known.bin") == {"len": 5}


@PROPERTY
@given(path=PATHS)
def test_a_written_file_is_found_again_under_the_same_name(board: FsBoard, path: str) -> None:
    """Whatever littlefs accepted as a file is found again under the same name."""
    with host_untouched():
        answer = _answer(board, WRITE, FILE, {"name": path, "off": 0, "len": 3, "data": b"abc"})
        if answer == {"off": 3}:
            assert _answer(board, READ, FILE, {"name": path, "off": 0}) == {
                "off": 0, "data": b"abc", "len": 3}
            with suppress(FsError):
                board.device.fs.unlink(path)


def test_the_file_system_api_never_opens_host_files(tmp_path: Path) -> None:
    board = FsBoard("nrf52840dk", tmp_path / "flash.bin")
    probe = tmp_path / "probe.txt"
    probe.write_text("host")
    with host_untouched():
        vfs = board.device.fs
        for path in (str(probe), "/lfs1/" + str(probe), "/lfs1/../" + str(probe)):
            try:
                file = vfs.open(path, FS_O_CREATE | FS_O_WRITE)
                file.write(b"device")
                file.close()
            except FsError:
                pass
    assert probe.read_text() == "host"
