"""The UART console: boot banner and log lines, in Zephyr's shapes, handed to listeners."""

from __future__ import annotations

from collections.abc import Callable

from smpsim.device.clock import Clock

Listener = Callable[[str], None]


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
        self._listeners: list[Listener] = []
        self.booted_at = 0.0
        """Emulated time of the last boot, for log timestamps."""

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every line printed from now on (without line ending)."""
        self._listeners.append(listener)

    def print(self, line: str) -> None:
        """Print a raw line (banners, MCUboot output)."""
        for listener in self._listeners:
            listener(line)

    def log(self, level: str, module: str, text: str) -> None:
        """Print a log line as ``[00:00:01.234,000] <inf> module: text``."""
        stamp = log_timestamp(self._clock.now() - self.booted_at)
        self.print(f"{stamp} <{level}> {module}: {text}")
