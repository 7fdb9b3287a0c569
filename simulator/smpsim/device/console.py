"""The UART console: boot banner and log lines, in Zephyr's shapes, handed to listeners."""

from __future__ import annotations

import re
from collections.abc import Callable

from smpsim.device.clock import Clock

Listener = Callable[[str], None]

LOG_LINE = re.compile(r"(\[\d\d:\d\d:\d\d\.\d{3},\d{3}\] )<(err|wrn|inf|dbg)> (.*)", re.S)
"""A log line as :meth:`Console.log` prints it: timestamp, level, module and message."""
LOG_COLORS = {"err": "\x1b[1;31m", "wrn": "\x1b[1;33m", "inf": "\x1b[0m", "dbg": "\x1b[0m"}
"""Zephyr's ``log_output`` colours (``LOG_COLOR_CODE_RED``, ``_YELLOW``, ``_DEFAULT``); info is
not green unless ``LOG_INFO_COLOR_GREEN``."""
COLOR_END = "\x1b[0m"


def colorize(line: str) -> str:
    """A log line as a UART log backend with ``LOG_BACKEND_SHOW_COLOR`` writes it; other console
    lines (printk, MCUboot's) unchanged."""
    match = LOG_LINE.fullmatch(line)
    if match is None:
        return line
    stamp, level, rest = match.groups()
    return f"{stamp}{LOG_COLORS[level]}<{level}> {rest}{COLOR_END}"


def log_timestamp(uptime_s: float) -> str:
    """Zephyr's ``[hh:mm:ss.mmm,uuu]`` log timestamp."""
    us = round(uptime_s * 1_000_000)
    seconds, us = divmod(us, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"[{hours:02d}:{minutes:02d}:{seconds:02d}.{us // 1000:03d},{us % 1000:03d}]"


class Console:
    """Text the device prints. Transports that carry a console subscribe to it."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._listeners: list[tuple[Listener, Callable[[], bool] | None]] = []
        self.booted_at = 0.0
        """Emulated time of the last boot, for log timestamps."""

    def subscribe(self, listener: Listener, wanted: Callable[[], bool] | None = None) -> None:
        """Call ``listener`` with every line printed from now on (without line ending);
        ``wanted``: asked at each line whether the listener takes it (a logger passes on only
        what its level lets through)."""
        self._listeners.append((listener, wanted))

    def print(self, line: str) -> None:
        """Print a raw line (banners, MCUboot output)."""
        for listener, wanted in self._listeners:
            if wanted is None or wanted():
                listener(line)

    def log(self, level: str, module: str, text: str) -> None:
        """Print a log line as ``[00:00:01.234,000] <inf> module: text``; not even formatted
        when no listener takes it (a fleet's boards log to a logger that drops them)."""
        for _, wanted in self._listeners:
            if wanted is None or wanted():
                break
        else:
            return
        stamp = log_timestamp(self._clock.now() - self.booted_at)
        self.print(f"{stamp} <{level}> {module}: {text}")
