"""``smpsim run --serial`` and ``--serial-device`` as a process: the ready line names the port,
real clients use it, the symlink goes away on exit, bad options exit 2."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .itsupport import BIN, echo_frame, smp_frame, smpsim_run
from .serial_support import Port

READY = re.compile(r"^smpsim: (\S+) serving SMP over (serial|UDP) on (\S+)(?: \((.*)\))?$")


@contextmanager
def serving(*args: str, endpoints: int = 1,
            ) -> Iterator[tuple[subprocess.Popen[str], list[re.Match[str]]]]:
    """``smpsim run ARGS``; yields the process and its ready lines, one per endpoint."""
    with smpsim_run("--time-scale", "0", *args, ready_lines=endpoints) as (proc, lines):
        matches = [READY.match(line) for line in lines]
        assert all(matches), lines
        yield proc, [m for m in matches if m is not None]


def test_serial_link_serves_smpmgr_and_goes_away(tmp_path: Path) -> None:
    link = tmp_path / "board"
    with serving("--profile", "qemu_cortex_m0_img", "--serial", str(link)) as (proc, ready):
        [match] = ready  # --serial alone: no UDP
        assert match.group(1, 2, 3) == ("qemu_cortex_m0_img", "serial", str(link))
        assert match[4].startswith("/dev/pts/") and match[4].endswith("uart, 115200 baud")
        assert link.is_symlink() and os.readlink(link) == match[4].split(",")[0]
        result = subprocess.run([str(BIN / "smpmgr"), "--port", str(link), "--timeout", "5",
                                 "os", "echo", "hi"], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert "r='hi'" in result.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not link.exists() and not link.is_symlink()


def test_default_link_is_printed_and_removed() -> None:
    with serving("--profile", "native_sim_serial_bigrx", "--serial", "--udp",
                 "127.0.0.1:0", endpoints=2) as (proc, ready):
        kinds = sorted(m[2] for m in ready)
        assert kinds == ["UDP", "serial"]
        [serial] = [m for m in ready if m[2] == "serial"]
        link = Path(serial[3])
        assert link.name == f"smpsim-native_sim_serial_bigrx-{proc.pid}"
        assert serial[4].endswith("uart, no line speed")
        with Port(str(link)) as port:
            port.send(echo_frame(5, "default"))
            assert port.answer(5) == {"r": "default"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert not link.is_symlink()


def test_serial_device_with_baud() -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        with serving("--profile", "qemu_cortex_m0_img", "--serial-device", name,
                     "--baud", "57600") as (proc, ready):
            [match] = ready
            assert (match[2], match[3], match[4]) == ("serial", name, "uart, 57600 baud")
            port = Port.on_fd(master)
            port.wait_for(lambda: b"*** Booting Zephyr OS build" in port.received)
            port.send(echo_frame(9, "cable"))
            assert port.answer(9) == {"r": "cable"}
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
    finally:
        os.close(master)


def test_bad_serial_options_exit_2(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "smpsim"), "run", *args], capture_output=True,
                              text=True, timeout=30, check=False)

    baud = run("--baud", "9600")
    assert baud.returncode == 2 and "--serial-device" in baud.stderr
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a link")
    blocked = run("--serial", str(in_the_way))
    assert blocked.returncode == 2 and "in the way" in blocked.stderr
    missing = run("--serial-device", str(tmp_path / "no-such-tty"))
    assert missing.returncode == 2 and "cannot open serial port" in missing.stderr


def test_hold_button_powers_on_into_serial_recovery(tmp_path: Path) -> None:
    """``--hold-button``: MCUboot's serial recovery answers on the line (its params: one
    1024-byte buffer), and the button is let go, so a reset from there boots the application."""
    link = tmp_path / "board"
    with serving("--serial", str(link), "--hold-button") as (proc, _), Port(str(link)) as port:
        port.send(smp_frame(0, 0, 6, 1))
        assert port.answer(1) == {"buf_size": 1024, "buf_count": 1}
        port.send(smp_frame(2, 0, 5, 2))
        assert port.answer(2) == {"rc": 0}  # MCUboot's reset answer
        port.wait_for(lambda: b"uart:~$ " in port.received, timeout=10)  # the app's shell
        port.send(smp_frame(0, 0, 6, 3))
        assert port.answer(3) == {"buf_size": 2475, "buf_count": 4}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "I: Enter the serial recovery mode" in (proc.stderr.read() if proc.stderr else "")
