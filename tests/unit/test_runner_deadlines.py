"""Answers at a time scale above 0 leave at deadlines on the board's schedule: counted from the
request's arrival, each queued request's from the answer before, and an answer the host's timer
sent late shortens the next wait, so timer lateness does not add up over an upload. Host time
and the runner's sleeps are replaced by a fake clock whose timer always wakes 1 ms late."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.mcumgr.server import Reply
from smpsim.transports import runner as runner_module
from smpsim.transports.runner import Runner

BUSY_S = 0.010
LATE_S = 0.001
START = 100.0


class BusyServer:
    """Answers every unit with itself after 10 ms of chip time."""

    def handle(self, unit: bytes) -> Reply:
        return Reply(frames=[unit], busy_s=BUSY_S)


class FakeHost:
    """The runner's ``time`` and ``asyncio``: a clock that moves only when the runner sleeps,
    and a timer that wakes :data:`LATE_S` after what was asked."""

    def __init__(self) -> None:
        self.now = START
        self.waits: list[float] = []
        self.time = types.SimpleNamespace(monotonic=lambda: self.now)
        self.asyncio = types.SimpleNamespace(**{name: getattr(asyncio, name)
                                                for name in dir(asyncio)
                                                if not name.startswith("_")})
        self.asyncio.sleep = self.sleep

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds + LATE_S
        await asyncio.sleep(0)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    monkeypatch.setattr(runner_module, "time", fake.time)
    monkeypatch.setattr(runner_module, "asyncio", fake.asyncio)
    return fake


async def _runner() -> Runner:
    runner = Runner(Device(load_profile("fast")), server=BusyServer())  # type: ignore[arg-type]
    await runner.start()  # at time scale 0: an instant boot, no thread
    runner.set_time_scale(1.0)
    return runner


def test_a_late_answer_shortens_the_next_wait(host: FakeHost) -> None:
    async def main() -> list[float]:
        runner = await _runner()
        sent: list[float] = []
        for n in range(5):  # a client that sends the next request on each answer
            answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def send(_frame: bytes, answered: Any = answered) -> None:
                sent.append(host.now)
                answered.set_result(None)

            runner.submit(bytes([n]), send)
            await answered
        await runner.close()
        return sent

    sent = asyncio.run(main())
    assert host.waits == pytest.approx([BUSY_S] + [BUSY_S - LATE_S] * 4)
    # Each answer 1 ms after the board's schedule, never more: 5 x 10 ms + 1 ms, not 5 x 11.
    assert sent == pytest.approx([START + BUSY_S * (n + 1) + LATE_S for n in range(5)])


def test_queued_requests_follow_the_deadline_before_theirs(host: FakeHost) -> None:
    async def main() -> list[float]:
        runner = await _runner()
        sent: list[float] = []
        for n in range(3):  # arriving together: the second and third wait in the queue
            runner.submit(bytes([n]), lambda _frame: sent.append(host.now))
        while len(sent) < 3:
            await asyncio.sleep(0)
        await runner.close()
        return sent

    sent = asyncio.run(main())
    assert sent == pytest.approx([START + BUSY_S * (n + 1) + LATE_S for n in range(3)])
