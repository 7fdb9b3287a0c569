"""Saying so when the simulated chip stays busy: a 10 s slot erase or a swap at time scale 1
looks like a hang otherwise.

When a reply is held back more than a second (the chip's flash work, lived at the time scale)
or a boot takes more than a second (MCUboot checking or swapping images), a line goes to the
``smpsim.busy`` logger (the CLI prints it on stderr as ``smpsim: ...``), then one every few
seconds until the board answers again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from smpsim.config.catalog import GROUPS
from smpsim.mcumgr.header import HEADER_SIZE, Header
from smpsim.mcumgr.server import Reply
from smpsim.transports.runner import Runner

log = logging.getLogger("smpsim.busy")

TELL_AFTER_S = 1.0
"""Busy for longer than this: say so."""
EVERY_S = 5.0
"""Then again this often."""
_NAMES = {info.group_id: (group, {cmd_id: cmd for cmd, cmd_id in info.commands.items()})
          for group, info in GROUPS.items()}


def request_name(reply: Reply) -> str:
    """``img upload``: the request a reply answers, from its first frame's header."""
    if not reply.frames or len(reply.frames[0]) < HEADER_SIZE:
        return "a request"
    header = Header.parse(reply.frames[0])
    group, commands = _NAMES.get(header.group, (f"group {header.group}", {}))
    return f"{group} {commands.get(header.cmd, f'command {header.cmd}')}"


class BusyTeller:
    """Watches one runner and tells when its board stays busy."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._phase = "MCUboot starting"
        self._boot: asyncio.TimerHandle | None = None
        """The next line about the boot in progress, while it is due."""
        self._later: list[asyncio.TimerHandle] = []
        runner.device.events.listeners.append(self._event)
        runner.state_listeners.append(self._state)
        runner.busy_listeners.append(self._busy)

    def _event(self, kind: str, fields: dict[str, Any]) -> None:
        # Called during a boot (in the loop, from the boot's own stack): a plain string swap.
        if kind == "swap" and fields.get("phase") == "start":
            resumed = "resuming an interrupted swap" if fields.get("resumed") else "swapping"
            self._phase = f"MCUboot {resumed}, image {fields.get('image', 0)}"
        elif kind == "mcuboot" and fields.get("phase") == "start":
            self._phase = "MCUboot checking the images"
        elif kind == "mcuboot" and fields.get("phase") == "jump":
            self._phase = "the application starting"

    def _state(self, state: str) -> None:
        for handle in self._later:  # a reset or a power cut ends the work
            handle.cancel()
        self._later.clear()
        if self._boot is not None:
            self._boot.cancel()
            self._boot = None
        if state == "booting" and self.runner.scale > 0:
            # A timer, not a task: a fleet reset together starts and ends a thousand boots at
            # once, and a task costs a step to start and another to cancel, each a loop pass.
            self._boot = asyncio.get_running_loop().call_later(TELL_AFTER_S, self._booting,
                                                               TELL_AFTER_S)

    def _booting(self, waited: float) -> None:
        log.info("the simulated board is booting (%s), %.0f s so far", self._phase, waited)
        self._boot = asyncio.get_running_loop().call_later(EVERY_S, self._booting,
                                                           waited + EVERY_S)

    def _busy(self, wait_s: float, reply: Reply) -> None:
        if wait_s <= TELL_AFTER_S:
            return
        what = request_name(reply)
        log.info("the simulated chip is busy for %.1f s (%s: flash work); the answer follows",
                 wait_s, what)
        loop = asyncio.get_running_loop()
        self._later = [loop.call_later(at, log.info, "still busy (%s): %d of %.0f s", what, at,
                                       wait_s)
                       for at in range(int(EVERY_S), int(wait_s), int(EVERY_S))]

    def close(self) -> None:
        """Stop watching (the board is going away)."""
        for handle in self._later:
            handle.cancel()
        if self._boot is not None:
            self._boot.cancel()
        if self._event in self.runner.device.events.listeners:
            self.runner.device.events.listeners.remove(self._event)
        if self._state in self.runner.state_listeners:
            self.runner.state_listeners.remove(self._state)
        if self._busy in self.runner.busy_listeners:
            self.runner.busy_listeners.remove(self._busy)
