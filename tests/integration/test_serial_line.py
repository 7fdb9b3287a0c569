"""The serial line itself: a PTY that clients come and go on, the console on it, reset with the
port held open, output nobody reads, and the same line on a real port (a pty pair through
pyserial). Instant time unless a test says otherwise."""

from __future__ import annotations

import os
import pty
import termios
import time
import tty
from collections.abc import Callable

import golden
from smpsim.pytest_plugin import EmulatedDevice

from .itsupport import RESET, WRITE, echo_frame, smp_frame, wait_until
from .serial_support import Port


def qemu_boot_console() -> list[str]:
    """The console text the real QEMU build printed at power-on (record ``boot.console``)."""
    for record in golden.records("qemu_cortex_m0_img.jsonl"):
        if record["case"] == "boot.console":
            text: list[str] = record["console_text"]
            return text
    raise AssertionError("no boot.console record")


def test_clients_come_and_go(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    board = smp_device_factory("native_sim_serial_bigrx", serial=True)
    assert board.serial_path is not None
    for seq in range(30):
        with Port(board.serial_path) as port:
            port.send(echo_frame(seq, f"visit {seq}"))
            header, body = port.frame()
            assert (header["seq"], body) == (seq, {"r": f"visit {seq}"})
    for _ in range(30):  # open and close without a word
        os.close(os.open(board.serial_path, os.O_RDWR | os.O_NOCTTY))
    with Port(board.serial_path) as port:
        port.send(echo_frame(99, "after all that"))
        assert port.answer(99) == {"r": "after all that"}


def test_boot_log_on_a_console_uart(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """MCUboot's lines, the Zephyr banner and the application's log, CRLF-ended, log lines in
    Zephyr's colours, as the QEMU build printed them; nothing of it on native_sim's PTY."""
    board = smp_device_factory("qemu_cortex_m0_img", serial=True)
    assert board.serial_path is not None
    with Port(board.serial_path, flush=False) as port:
        port.wait_for(lambda: b"build time" in port.received)
        text = port.received.decode()
    real = qemu_boot_console()
    assert text.startswith(f"{real[0]}\r\n{real[1]}\r\n{real[2]}\r\n"), text
    assert f"\r\n{real[-2]}\r\n" in text  # *** Booting Zephyr OS build 684c9e8f32e4 ***
    stamp_free = real[-1].split("] ", 1)[1]  # the real board's uptime differs
    assert f"] {stamp_free}\r\n" in text
    assert "I: Jumping to the first image slot\r\n" in text
    plain = smp_device_factory("native_sim_serial_bigrx", serial=True)
    assert plain.serial_path is not None
    with Port(plain.serial_path, flush=False) as port:
        assert port.quiet(0.1) == b""


def test_reset_over_serial_keeps_the_port(
        smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    board = smp_device_factory("qemu_cortex_m0_img", serial=True)
    assert board.serial_path is not None
    with Port(board.serial_path) as port:
        port.send(smp_frame(WRITE, *RESET, 7, {}))
        header, body = port.frame()
        assert (header["seq"], body) == (7, {})
        port.wait_for(lambda: port.received.count(b"build time") == 1)
        assert b"*** Booting MCUboot" in port.received
        assert board.state().boot_count == 2
        port.send(echo_frame(8, "still here"))
        assert port.frame()[1] == {"r": "still here"}


def test_output_nobody_reads_is_dropped(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """A client that writes and never reads fills the PTY; the board keeps going and answers
    the next client (within the port's answer timeout: it does not wait for the backlog to be
    read, which would never happen)."""
    board = smp_device_factory("native_sim_serial_bigrx", serial=True)
    assert board.serial_path is not None
    with Port(board.serial_path) as deaf:
        for seq in range(250):  # ~100 KB of answers, far more than the PTY holds
            deaf.send(echo_frame(seq, "x" * 300))
        time.sleep(0.2)
    with Port(board.serial_path) as port:
        port.send(echo_frame(251, "anyone?"))
        assert port.answer(251) == {"r": "anyone?"}
    _, sent_out = board.serial_traffic()
    assert sent_out < 250 * 400, "most of the unread answers were dropped"


def test_a_real_port_through_pyserial(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """``--serial-device``: a pty pair stands in for a USB-serial cable; the board opens one
    end through pyserial at the given baud rate, the test talks on the other."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        board = smp_device_factory("qemu_cortex_m0_img", serial_device=name, baud=57600)
        with Port.on_fd(master) as port:
            port.wait_for(lambda: b"build time" in port.received)
            assert b"*** Booting MCUboot" in port.received
            port.send(echo_frame(3, "over a real port"))
            assert port.answer(3) == {"r": "over a real port"}
            fd = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                assert termios.tcgetattr(fd)[5] == termios.B57600
            finally:
                os.close(fd)
            port.fd = -1
        assert board.state().online
    finally:
        os.close(master)


def test_the_pty_is_raw(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    board = smp_device_factory("native_sim_serial_bigrx", serial=True)
    assert board.serial_path is not None
    fd = os.open(board.serial_path, os.O_RDWR | os.O_NOCTTY)
    try:
        attrs = termios.tcgetattr(fd)
        lflag, oflag, iflag = attrs[3], attrs[1], attrs[0]
        assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG)
        assert not oflag & termios.OPOST and not iflag & termios.ICRNL
    finally:
        os.close(fd)
    wait_until(lambda: board.state().online)


def test_shell_transport_on_the_line(smp_device_factory: Callable[..., EmulatedDevice]) -> None:
    """native_sim_shell: the prompt once the board is up, keys echoed, a command answered, SMP
    frames taken out of the shell's input (no echo, no new prompt), ``kernel reboot`` resets the
    board with the port still open and a new prompt."""
    board = smp_device_factory("native_sim_shell", serial=True)
    assert board.serial_path is not None
    prompt = b"\x1b[1;32muart:~$ \x1b[m"
    with Port(board.serial_path, flush=False) as port:
        port.wait_for(lambda: port.received.endswith(prompt))
        port.received = b""
        port.write(b"kernel version\r")
        port.wait_for(lambda: port.received.endswith(prompt))
        assert port.received == b"kernel version\r\nZephyr version 4.4.0\r\n" + prompt
        port.received = b""
        port.send(echo_frame(4, "inside the shell"))
        assert port.answer(4) == {"r": "inside the shell"}
        assert port.quiet(0.05) == b"" and not port.received.startswith(b"\x1b")
        port.received = b""
        port.write(b"kernel reboot\r")
        port.wait_for(lambda: port.received.endswith(prompt))
        assert board.state().boot_count == 2
        port.send(echo_frame(5, "after reboot"))
        assert port.answer(5) == {"r": "after reboot"}
