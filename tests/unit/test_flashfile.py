"""flashfile: one owner per flash file (flock), new files built as a part file and moved into
place whole. (Across processes, with the real CLI: tests/integration/test_flash_ownership.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from smpsim import flashfile
from smpsim.errors import ConfigError

SIZE = 64 * 1024


def test_a_new_file_appears_only_when_committed(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "flash.bin"
    owned = flashfile.acquire(path, SIZE)
    assert owned.created and owned.open_path == flashfile.part_path(path)
    assert owned.open_path.read_bytes() == b"\xff" * SIZE  # a blank chip
    assert not path.exists()
    owned.commit()
    assert path.exists() and not flashfile.part_path(path).exists()
    assert not owned.created and owned.open_path == path
    owned.close()
    assert path.read_bytes() == b"\xff" * SIZE


def test_a_file_never_committed_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "flash.bin"
    flashfile.acquire(path, SIZE).close()
    assert list(tmp_path.iterdir()) == []  # nor the folders made for it


def test_one_writer_many_readers(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    path.write_bytes(b"\xff" * SIZE)
    writer = flashfile.acquire(path, SIZE)
    with pytest.raises(flashfile.FlashBusy, match="is in use by"):
        flashfile.acquire(path, SIZE)
    with pytest.raises(flashfile.FlashBusy):
        flashfile.acquire(path, SIZE, exclusive=False)
    writer.close()
    readers = [flashfile.acquire(path, SIZE, exclusive=False) for _ in range(2)]
    with pytest.raises(flashfile.FlashBusy):
        flashfile.acquire(path, SIZE)
    for reader in readers:
        reader.close()
    flashfile.acquire(path, SIZE).close()


def test_a_file_being_made_is_refused_to_a_second_maker(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    maker = flashfile.acquire(path, SIZE)
    with pytest.raises(flashfile.FlashBusy, match="is being created by"):
        flashfile.acquire(path, SIZE)
    maker.close()


def test_a_part_file_left_by_a_kill_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    flashfile.part_path(path).write_bytes(b"half made" * 1000)
    owned = flashfile.acquire(path, SIZE)
    assert owned.open_path.read_bytes() == b"\xff" * SIZE
    owned.commit()
    owned.close()


def test_a_file_made_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "flash.bin"
    owned = flashfile.acquire(path, SIZE)
    path.write_bytes(b"\x00" * SIZE)  # someone else's board, made without asking
    with pytest.raises(ConfigError, match="appeared while this board was being made"):
        owned.commit()
    owned.close()
    assert path.read_bytes() == b"\x00" * SIZE


def test_the_holder_is_named_from_proc_locks(tmp_path: Path) -> None:
    # Our own lock is not "another process": the holder's PID comes only from someone else.
    path = tmp_path / "flash.bin"
    owned = flashfile.acquire(path, SIZE)
    assert owned._fd is not None
    assert flashfile.lock_holder(owned._fd) is None
    owned.close()
