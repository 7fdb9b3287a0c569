"""The device clock (instant and scaled) and the RTC's calendar arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpsim.device.clock import Clock
from smpsim.device.rtc import DateTime, Rtc


class FakeHost:
    """A host clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------- clock


def test_instant_clock_stands_still() -> None:
    host = FakeHost()
    clock = Clock(0.0, host)
    host.now += 3600
    assert clock.now() == 0.0


def test_instant_clock_moves_with_spend_and_advance() -> None:
    clock = Clock()
    clock.spend(0.5)
    assert (clock.now(), clock.busy_total) == (0.5, 0.5)
    clock.advance(2.0)
    assert (clock.now(), clock.busy_total) == (2.5, 0.5)
    clock.spend(0.25)
    assert (clock.now(), clock.busy_total) == (2.75, 0.75)


def test_scaled_clock_follows_the_host() -> None:
    host = FakeHost()
    clock = Clock(1.0, host)
    assert clock.now() == 0.0
    host.now += 2.5
    assert clock.now() == 2.5


def test_time_scale_stretches_host_time() -> None:
    host = FakeHost()
    fast = Clock(0.5, host)  # 0.5: emulated time runs twice as fast as the host
    slow = Clock(2.0, host)
    host.now += 4.0
    assert fast.now() == 8.0
    assert slow.now() == 2.0


def test_scaled_clock_moves_on_with_busy_time_and_waits_for_the_host() -> None:
    host = FakeHost()
    clock = Clock(1.0, host)
    clock.spend(3.0)  # emulated time moves on at once; the transport then sleeps it off
    assert clock.busy_total == 3.0
    assert clock.now() == 3.0
    host.now += 2.0  # still sleeping: time does not run backwards or jump twice
    assert clock.now() == 3.0
    host.now += 1.0
    assert clock.now() == 3.0
    host.now += 1.5
    assert clock.now() == 4.5


def test_scaled_clock_can_still_be_advanced() -> None:
    host = FakeHost()
    clock = Clock(1.0, host)
    clock.advance(10.0)
    host.now += 1.0
    assert clock.now() == 11.0


def test_negative_time_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        Clock(-0.1)


# ----------------------------------------------------------------------------- rtc


def _rtc() -> tuple[Clock, Rtc]:
    clock = Clock()
    return clock, Rtc(clock)


def test_rtc_is_unset_at_power_on() -> None:
    clock, rtc = _rtc()
    clock.advance(100)
    assert rtc.get() is None


def test_rtc_returns_what_was_set() -> None:
    _, rtc = _rtc()
    rtc.set(DateTime(2025, 1, 2, 3, 4, 5, 678))
    assert rtc.get() == DateTime(2025, 1, 2, 3, 4, 5, 678)


def test_rtc_counts_from_the_moment_it_was_set() -> None:
    clock, rtc = _rtc()
    clock.advance(1000)
    rtc.set(DateTime(2025, 1, 1, 0, 0, 0))
    clock.advance(61.5)
    assert rtc.get() == DateTime(2025, 1, 1, 0, 1, 1, 500)


def test_setting_again_replaces_the_time() -> None:
    clock, rtc = _rtc()
    rtc.set(DateTime(2025, 1, 1, 0, 0, 0))
    clock.advance(10)
    rtc.set(DateTime(2000, 6, 15, 12, 0, 0))
    assert rtc.get() == DateTime(2000, 6, 15, 12, 0, 0)


@pytest.mark.parametrize(("start", "seconds", "end"), [
    (DateTime(2023, 1, 31, 23, 59, 59), 1, DateTime(2023, 2, 1, 0, 0, 0)),      # month
    (DateTime(2023, 12, 31, 23, 59, 59), 1, DateTime(2024, 1, 1, 0, 0, 0)),     # year
    (DateTime(2024, 2, 28, 23, 59, 59), 1, DateTime(2024, 2, 29, 0, 0, 0)),     # leap year
    (DateTime(2023, 2, 28, 23, 59, 59), 1, DateTime(2023, 3, 1, 0, 0, 0)),      # common year
    (DateTime(2100, 2, 28, 12, 0, 0), 86400, DateTime(2100, 3, 1, 12, 0, 0)),   # century
    (DateTime(2000, 2, 28, 12, 0, 0), 86400, DateTime(2000, 2, 29, 12, 0, 0)),  # 400 years
    (DateTime(1900, 2, 28, 0, 0, 0), 86400, DateTime(1900, 3, 1, 0, 0, 0)),
    (DateTime(2024, 4, 30, 0, 0, 0), 86400, DateTime(2024, 5, 1, 0, 0, 0)),
    (DateTime(2024, 1, 1, 0, 0, 0), 366 * 86400, DateTime(2025, 1, 1, 0, 0, 0)),
    (DateTime(9999, 12, 31, 23, 59, 59), 1, DateTime(10000, 1, 1, 0, 0, 0)),   # past 9999
    (DateTime(10400, 2, 28, 0, 0, 0), 86400, DateTime(10400, 2, 29, 0, 0, 0)),
    (DateTime(10500, 2, 28, 0, 0, 0), 86400, DateTime(10500, 3, 1, 0, 0, 0)),
    (DateTime(11899, 12, 31, 23, 59, 59), 1, DateTime(11900, 1, 1, 0, 0, 0)),
])
def test_rtc_calendar_boundaries(start: DateTime, seconds: int, end: DateTime) -> None:
    clock, rtc = _rtc()
    rtc.set(start)
    clock.advance(seconds)
    assert rtc.get() == end


def test_rtc_milliseconds_carry_into_seconds() -> None:
    clock, rtc = _rtc()
    rtc.set(DateTime(2024, 12, 31, 23, 59, 59, 999))
    clock.advance(0.25)
    assert rtc.get() == DateTime(2025, 1, 1, 0, 0, 0, 249)


@pytest.mark.parametrize(("given_", "normalised"), [
    (DateTime(2023, 2, 31, 0, 0, 0), DateTime(2023, 3, 3, 0, 0, 0)),
    (DateTime(2024, 2, 30, 0, 0, 0), DateTime(2024, 3, 1, 0, 0, 0)),
    (DateTime(2024, 4, 31, 10, 0, 0), DateTime(2024, 5, 1, 10, 0, 0)),
])
def test_rtc_rolls_out_of_month_days_over(given_: DateTime, normalised: DateTime) -> None:
    _, rtc = _rtc()
    rtc.set(given_)
    assert rtc.get() == normalised


_moments = st.datetimes(min_value=dt.datetime(1900, 1, 1),
                        max_value=dt.datetime(9000, 12, 31, 23, 59, 59))


@given(start=_moments, elapsed_ms=st.integers(0, 1000 * 86400 * 366 * 900))
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_rtc_agrees_with_python_datetime(start: dt.datetime, elapsed_ms: int) -> None:
    start = start.replace(microsecond=start.microsecond // 1000 * 1000)
    clock, rtc = _rtc()
    rtc.set(DateTime(start.year, start.month, start.day, start.hour, start.minute,
                     start.second, start.microsecond // 1000))
    clock.advance(elapsed_ms // 1000)  # whole seconds: exact in floating point
    expected = start + dt.timedelta(seconds=elapsed_ms // 1000)
    assert rtc.get() == DateTime(expected.year, expected.month, expected.day, expected.hour,
                                 expected.minute, expected.second, expected.microsecond // 1000)
