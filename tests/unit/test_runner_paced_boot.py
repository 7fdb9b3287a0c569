"""Boots at a time scale above 0 are lived on the event loop, each on a stack of its own (a
greenlet) that waits for its deadlines on the loop's timers: many boards boot at once without a
thread each (no pool to queue behind), a reset in the middle of a boot cuts it short and boots
again, and stopping the runner ends the boot before its next flash operation."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable

from smpsim.config import load_profile
from smpsim.device.mcu import Device
from smpsim.transports.runner import Runner

BOOT_S = 1.0
PROFILE = load_profile("fast")
SLOW = dataclasses.replace(PROFILE, board=dataclasses.replace(PROFILE.board,
                                                              boot_time_ms=BOOT_S * 1000))


def boots(*runners: Runner) -> int:
    """Boots in progress (started, not ended) among ``runners``."""
    return sum(1 for r in runners if r._boot_greenlet is not None and not r._boot_greenlet.dead)


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


def test_forty_boards_boot_together_without_a_thread_each() -> None:
    async def main() -> None:
        threads = threading.active_count()
        runners = [Runner(Device(SLOW, time_scale=1.0)) for _ in range(40)]
        starts = [asyncio.ensure_future(r.start()) for r in runners]
        await until(lambda: boots(*runners) == 40)  # a pool would have min(32, cpus+4)
        assert threading.active_count() == threads
        await asyncio.gather(*starts)
        assert all(r.online.is_set() for r in runners)
        for runner in runners:
            await runner.close()
        assert boots(*runners) == 0

    asyncio.run(main())


def test_a_reset_in_the_middle_of_a_boot_cuts_it_short_and_boots_again() -> None:
    async def main() -> None:
        runner = Runner(Device(SLOW, time_scale=1.0))
        start = asyncio.ensure_future(runner.start())
        await until(lambda: boots(runner) == 1)
        await asyncio.sleep(0.1)  # well inside the boot
        await runner.reset()  # the reset line, pressed while the board boots
        assert runner.online.is_set()
        await start  # the first boot ended quietly, cut short
        assert runner.device.boot_count == 2 and runner.device.running
        await runner.close()
        assert boots(runner) == 0

    asyncio.run(main())


def test_closing_mid_boot_stops_the_boot_before_its_next_flash_operation() -> None:
    async def main() -> None:
        runner = Runner(Device(SLOW, time_scale=1.0))
        start = asyncio.ensure_future(runner.start())
        await until(lambda: boots(runner) == 1)
        await asyncio.sleep(0.1)
        ops = runner.device.flash.ops
        await runner.close()
        assert boots(runner) == 0 and not runner.online.is_set()
        await asyncio.sleep(BOOT_S)
        assert runner.device.flash.ops == ops  # nothing more landed after the close
        start.cancel()

    asyncio.run(main())
