"""Emulated time: uptime, RTC base and the busy time the transports sleep off.

With ``time_scale`` > 0 emulated time follows the host clock, slowed or sped up by the scale
(0.1 makes a 10 s erase take 1 s). With ``time_scale`` 0 ("instant") emulated time stands
still except for the busy time the chip spends and explicit :meth:`Clock.advance` calls, so
tests are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """The device's sense of time, in seconds since the emulator started."""

    def __init__(self, time_scale: float = 0.0,
                 host_time: Callable[[], float] = time.monotonic) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self.time_scale = time_scale
        self._host_time = host_time
        self._anchor = host_time()
        self._offset = 0.0
        self._busy_until = 0.0
        self.busy_total = 0.0
        self.pacer: Callable[[float], None] | None = None
        """Set by a transport that lives the busy time as it is spent (a boot run in a worker
        thread): called with each busy period before the work it stands for is done."""
        """Sum of all busy time reported so far; the server diffs it per request."""

    def now(self) -> float:
        """Emulated seconds since start."""
        if self.time_scale > 0:
            # Busy time moves the clock on at once; the host clock catches up while the
            # transport sleeps it off, so emulated time never runs backwards.
            return max(self._offset + (self._host_time() - self._anchor) / self.time_scale,
                       self._busy_until)
        return self._offset

    def spend(self, seconds: float) -> None:
        """The chip is busy for ``seconds`` (an erase, a write, a boot step).

        Emulated time moves on at once; with a time scale the transport then sleeps it off.
        """
        self.busy_total += seconds
        if self.time_scale == 0:
            self._offset += seconds
            return
        self._busy_until = self.now() + seconds
        if self.pacer is not None:
            self.pacer(seconds)

    def set_time_scale(self, scale: float) -> None:
        """Go on at another time scale: emulated time so far is kept, and moves at the new
        rate from now."""
        if scale < 0:
            raise ValueError("time_scale must be >= 0")
        now = self.now()
        self._offset, self._anchor, self.time_scale = now, self._host_time(), scale

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of idle time pass (tests in instant mode)."""
        self._offset += seconds
