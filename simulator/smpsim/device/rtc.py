"""A real-time clock peripheral: unset at power-on, then running on the device clock."""

from __future__ import annotations

from smpsim.device.clock import Clock
from smpsim.records import Frozen, frozen


@frozen
class DateTime(Frozen):
    """Calendar time as Zephyr's ``struct rtc_time`` holds it (year is the full year)."""

    year: int
    """Full year (1900..11899 accepted by os datetime set)."""
    month: int
    """1..12."""
    day: int
    """1..31."""
    hour: int
    """0..23."""
    minute: int
    """0..59."""
    second: int
    """0..59."""
    ms: int = 0
    """0..999."""


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's algorithm: works for any year, unlike datetime (1..9999).
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


class Rtc:
    """The RTC: ``get`` is ``None`` until ``set`` is called (Zephyr's ``-ENODATA``)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._base_ms: int | None = None
        self._set_at = 0.0

    def set(self, when: DateTime) -> None:
        """Set the calendar time; out-of-month days roll over as the counter would."""
        days = _days_from_civil(when.year, when.month, when.day)
        seconds = ((days * 24 + when.hour) * 60 + when.minute) * 60 + when.second
        self._base_ms = seconds * 1000 + when.ms
        self._set_at = self._clock.now()

    def get(self) -> DateTime | None:
        """Current calendar time, or ``None`` when never set."""
        if self._base_ms is None:
            return None
        now_ms = self._base_ms + int((self._clock.now() - self._set_at) * 1000)
        seconds, ms = divmod(now_ms, 1000)
        days, rest = divmod(seconds, 86400)
        year, month, day = _civil_from_days(days)
        return DateTime(year, month, day, rest // 3600, rest // 60 % 60, rest % 60, ms)
