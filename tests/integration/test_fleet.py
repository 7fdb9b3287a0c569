"""``smpsim fleet`` as a process, with real clients: fifty boards each on its own
``127.0.1.x:1337`` (smpmgr's port is fixed), an update on one board that leaves the others
alone, flash kept across a restart, worker processes, PTYs, and every bad input refused with
exit code 2 before any board starts.

Fleets here live on 127.0.1.x (other tests use 127.0.0.N), each test on its own addresses.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .itsupport import BIN, READ, WRITE, echo_frame, parse_frame, smp_frame, smpsim_run
from .test_dfu_smpmgr import APP_110, FACTORY, IMAGES, flags, smpmgr, state_read

STOP_TIMEOUT_S = 20.0


@contextmanager
def fleet(flash_dir: Path, *args: str, boards: int,
          ) -> Iterator[tuple[subprocess.Popen[str], list[str], dict[str, Any]]]:
    """``smpsim fleet --flash-dir FLASH_DIR ARGS`` at time scale 0 unless ARGS say otherwise;
    yields the process, its ready lines (one per endpoint, then the fleet's) and the manifest.
    Stopped with SIGTERM afterwards."""
    scale = [] if "--time-scale" in args else ["--time-scale", "0"]
    endpoints = 2 if "--serial" in args else 1
    with smpsim_run("--flash-dir", str(flash_dir), *scale, *args,
                    ready_lines=boards * endpoints + 1, command="fleet") as (proc, lines):
        manifest = json.loads((flash_dir / "manifest.json").read_text())
        yield proc, lines, manifest
        stop(proc)


def stop(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    assert proc.wait(STOP_TIMEOUT_S) == 0


def ask(address: tuple[str, int], request: bytes, timeout_s: float = 5.0) -> Any:
    """One request, one answer's body."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.sendto(request, address)
        data, source = sock.recvfrom(4096)
    assert source == address
    return parse_frame(data)[1]


def images(address: tuple[str, int]) -> dict[int, tuple[str, bytes, bool, bool]]:
    """{slot: (version, hash, active, confirmed)} from a raw image state read."""
    body = ask(address, smp_frame(READ, 1, 0, 1))
    return {i["slot"]: (i["version"], i["hash"], i.get("active", False),
                        i.get("confirmed", False)) for i in body["images"]}


def test_fifty_boards_each_answer_on_their_own_address(tmp_path: Path) -> None:
    with fleet(tmp_path, "--board", "nrf52840dk:50", "--addresses", "127.0.1.1",
               boards=50) as (_, lines, manifest):
        ids = [f"nrf52840dk-{n:04d}" for n in range(1, 51)]
        addresses = [(f"127.0.1.{n}", 1337) for n in range(1, 51)]
        assert lines[:50] == [f"smpsim: {i} serving SMP over UDP on {h}:1337"
                              for i, (h, _) in zip(ids, addresses, strict=True)]
        assert lines[50] == (f"smpsim: fleet of 50 boards ready (nrf52840dk 50; 1 worker); "
                             f"manifest {(tmp_path / 'manifest.json').resolve()}")
        boards = manifest["boards"]
        assert [b["id"] for b in boards] == ids
        assert [b["endpoints"] for b in boards] == [
            [{"transport": "udp", "host": h, "port": 1337}] for h, _ in addresses]
        assert all(Path(b["flash"]).stat().st_size == 0x100000 for b in boards)
        assert len({b["serial_number"] for b in boards}) == 50

        # Every board, with a raw socket: the answer comes from the board's own address.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5.0)
            for n, address in enumerate(addresses):
                sock.sendto(echo_frame(n, ids[n]), address)
            answers = {}
            for _ in addresses:
                data, source = sock.recvfrom(4096)
                answers[source] = parse_frame(data)[1]
        assert answers == {a: {"r": i} for i, a in zip(ids, addresses, strict=True)}

        # A sample with smpmgr, whose port is fixed at 1337.
        for n in (1, 26, 50):
            assert f"r='board {n}'" in smpmgr(f"127.0.1.{n}", "os", "echo", f"board {n}")

        # Each board knows who it is: hostname in os info, serial number in settings.
        for n in (3, 44):
            entry = boards[n - 1]
            assert ask(addresses[n - 1], smp_frame(READ, 0, 7, 1, {"format": "n"})) == {
                "output": entry["hostname"]}
            assert ask(addresses[n - 1], smp_frame(READ, 3, 0, 1, {"name": "id/serial"})) == {
                "val": entry["serial_number"].encode()}


def test_an_update_of_one_board_leaves_the_others_and_a_restart_keeps_every_flash(
        tmp_path: Path) -> None:
    spec = ("--board", "nrf52840dk:12", "--addresses", "127.0.1.51")
    addresses = [(f"127.0.1.{n}", 1337) for n in range(51, 63)]
    factory = {0: ("1.0.0", bytes.fromhex(FACTORY), True, True)}
    updated = {0: ("1.1.0", bytes.fromhex(APP_110), True, True),
               1: ("1.0.0", bytes.fromhex(FACTORY), False, False)}
    target = "127.0.1.57"  # nrf52840dk-0007
    with fleet(tmp_path, *spec, boards=12):
        assert "100.0%" in smpmgr(target, "image", "upload", str(IMAGES / "app-1.1.0.bin"))
        smpmgr(target, "image", "state-write", APP_110)
        assert "ResetWriteResponse(" in smpmgr(target, "os", "reset")
        assert state_read(target) == {0: ("1.1.0", APP_110, flags("active")),
                                      1: ("1.0.0", FACTORY, flags("confirmed"))}
        smpmgr(target, "image", "state-write", "--confirm")
        # Another board keeps a setting in its flash.
        other = addresses[2]
        assert ask(other, smp_frame(WRITE, 3, 0, 1, {"name": "app/greeting",
                                                     "val": b"fleet"})) == {}
        assert ask(other, smp_frame(WRITE, 3, 3, 2, {})) == {}
        for address in addresses:
            assert images(address) == (updated if address[0] == target else factory)
    assert len(list(tmp_path.glob("*.bin"))) == 12

    with fleet(tmp_path, *spec, boards=12) as (_, _, manifest):
        assert [b["id"] for b in manifest["boards"]] == [f"nrf52840dk-{n:04d}"
                                                        for n in range(1, 13)]
        for address in addresses:
            assert images(address) == (updated if address[0] == target else factory)
        assert ask(addresses[2], smp_frame(READ, 3, 0, 3, {"name": "app/greeting"})) == {
            "val": b"fleet"}
        assert ask(addresses[3], smp_frame(READ, 3, 0, 3, {"name": "app/greeting"})) == {
            "val": b"hello"}  # the profile's default: that board saved nothing


def test_workers_share_the_fleet_and_stop_together(tmp_path: Path) -> None:
    for _ in range(5):  # ports are shared with the rest of the machine: try a few bases
        base = random.randrange(20000, 60000)
        try:
            with fleet(tmp_path, "--board", "fast:7", "--board", "stm32f4:3", "--host",
                       "127.0.1.70", "--base-port", str(base), "--workers", "2",
                       "--time-scale", "1", boards=10) as (proc, lines, manifest):
                workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
                assert len(workers.split()) == 2
                boards = manifest["boards"]
                assert [b["worker"] for b in boards] == [0] * 5 + [1] * 5
                assert [b["id"] for b in boards][-3:] == ["stm32f4-0001", "stm32f4-0002",
                                                         "stm32f4-0003"]
                for n, board in enumerate(boards):
                    (endpoint,) = board["endpoints"]
                    assert (endpoint["host"], endpoint["port"]) == ("127.0.1.70", base + n)
                    assert ask(("127.0.1.70", base + n), echo_frame(n, board["id"])) == {
                        "r": board["id"]}
                assert "2 workers" in lines[-1]
                stop(proc, signal.SIGINT)  # Ctrl-C: the parent stops its workers
                for pid in workers.split():
                    assert not Path(f"/proc/{pid}").exists()
            return
        except AssertionError as exc:
            if "no ready line" not in str(exc):
                raise
    raise AssertionError("no free run of ports for the fleet")


def test_each_board_gets_a_pty(tmp_path: Path) -> None:
    with fleet(tmp_path, "--board", "fast:2", "--addresses", "127.0.1.80", "--serial",
               boards=2) as (_, lines, manifest):
        link = tmp_path / "fast-0002.tty"
        assert lines[2] == "smpsim: fast-0002 serving SMP over UDP on 127.0.1.81:1337"
        assert lines[3].startswith(f"smpsim: fast-0002 serving SMP over serial on {link} (")
        assert {"transport": "serial", "path": str(link)} in manifest["boards"][1]["endpoints"]
        result = subprocess.run([str(BIN / "smpmgr"), "--port", str(link), "--timeout", "5",
                                 "os", "echo", "over the line"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0 and "r='over the line'" in result.stdout, result
    assert not link.exists()  # the link goes with the fleet


@pytest.mark.parametrize(("args", "message"), [
    (["--board", "nosuch:3", "--addresses", "127.0.1.100"], "no built-in profile 'nosuch'"),
    (["--board", "fast:5@127.0.1.150", "--board", "fast:5@127.0.1.152"],
     "fast-0003 and fast-0006 would both serve 127.0.1.152:1337: the board specs' address "
     "ranges overlap"),
    (["--board", "fast:10", "--addresses", "127.255.255.250"],
     "10 boards from 127.255.255.250 need 10 addresses; only 5 are left up to "
     "127.255.255.254"),
    (["--board", "fast:10", "--host", "127.0.1.1", "--base-port", "65530"],
     "10 boards from port 65530 need ports up to 65539; the last port is 65535"),
    (["--board", "fast:1", "--host", "127.0.1.1"], "--host needs --base-port"),
])
def test_bad_input_is_refused_before_any_board_starts(tmp_path: Path, args: list[str],
                                                      message: str) -> None:
    if "--addresses" not in args and "--host" not in args:
        args = [*args, "--addresses", "127.0.1.150"]
    refused(["--flash-dir", str(tmp_path), *args], message)
    assert list(tmp_path.iterdir()) == []


def test_a_flash_dir_that_is_not_writable_is_refused() -> None:
    # /proc refuses new files even to root, whom permission bits do not stop.
    refused(["--flash-dir", "/proc/smpsim-fleet", "--board", "fast:1", "--addresses",
             "127.0.1.160"], "flash dir /proc/smpsim-fleet is not writable")


def test_a_fleet_on_addresses_another_fleet_holds_is_refused(tmp_path: Path) -> None:
    with fleet(tmp_path / "a", "--board", "fast:2", "--addresses", "127.0.1.171", boards=2):
        refused(["--flash-dir", str(tmp_path / "b"), "--board", "fast:5", "--addresses",
                 "127.0.1.168"],
                "cannot serve UDP on 127.0.1.171:1337: in use (another fleet, or another "
                "program, is bound there)")
        assert not list((tmp_path / "b").glob("*.bin"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.1.168", 1337))  # what the refused fleet had bound, it let go


def refused(args: list[str], message: str) -> None:
    result = subprocess.run([str(BIN / "smpsim"), "fleet", "--time-scale", "0", *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"smpsim: error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
