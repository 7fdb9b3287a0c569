"""A person at a terminal: ``smpsim run --serial`` in one process, a terminal program (pyserial's
miniterm) on the link inside tmux, keys typed with send-keys and the screen read back with
capture-pane. They get the shell prompt, see the boot log when the board reboots, and use the
shell."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tmux(*args: str, socket: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True,
                          text=True).stdout


def screen_until(text: str, socket: str, timeout_s: float = 15.0) -> str:
    deadline = time.monotonic() + timeout_s
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-J", "-t", "term", socket=socket)
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared on the terminal:\n{screen}")


@pytest.fixture
def board_link(tmp_path: Path) -> Iterator[Path]:
    link = tmp_path / "board"
    env = {**os.environ, "PYTHONPATH": str(REPO / "simulator")}
    with subprocess.Popen([sys.executable, "-m", "smpsim", "run", "--profile", "nrf52840dk",
                           "--time-scale", "0", "--serial", str(link)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as proc:
        try:
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            assert str(link) in ready, ready
            yield link
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_person_sees_the_boot_log_and_uses_the_shell(board_link: Path, tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is installed by make test (Makefile: system packages)"
    socket = f"smpsim-{os.getpid()}"
    miniterm = f"{sys.executable} -m serial.tools.miniterm --raw --eol CR {board_link} 115200"
    tmux("new-session", "-d", "-s", "term", "-x", "160", "-y", "50", miniterm, socket=socket)
    try:
        screen_until("--- Miniterm on", socket)
        tmux("send-keys", "-t", "term", "Enter", socket=socket)
        screen_until("uart:~$", socket)
        # As on a board, the boot log shows up at the next boot: reboot it from the shell.
        tmux("send-keys", "-t", "term", "kernel reboot", "Enter", socket=socket)
        screen = screen_until("*** Booting Zephyr OS build", socket)
        assert "I: Starting bootloader" in screen
        assert screen.index("I: Starting bootloader") < screen.index("*** Booting Zephyr OS")
        screen_until("uart:~$", socket)
        tmux("send-keys", "-t", "term", "kernel version", "Enter", socket=socket)
        screen = screen_until("Zephyr version 4.4.0", socket)
        assert "uart:~$ kernel version" in screen  # typed characters are echoed
        tmux("send-keys", "-t", "term", "nosuchcmd", "Enter", socket=socket)
        screen_until("nosuchcmd: command not found", socket)
        tmux("send-keys", "-t", "term", "mcuboot", "Enter", socket=socket)
        screen = screen_until("primary area", socket)
        assert "version: 1.0.0" in screen or "1.0.0" in screen
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False, capture_output=True)
