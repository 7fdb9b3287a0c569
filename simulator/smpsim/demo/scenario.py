"""The demos' scenarios: a client's steps over SMP, narrated, and the board's own story (MCUboot's
decisions, the swap, the application starting or crashing) told from the control plane's event
stream as it happens.

A step is one thing a person would do with a client (read the state, upload, mark for test,
reset, confirm); between steps the demo waits (``step_delay``) or, with ``pause``, waits for
Enter, so a presenter can talk over the dashboard.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, TextIO

from smpsim.control.events import Event
from smpsim.control.plane import ControlPlane
from smpsim.demo.client import SmpUdpClient
from smpsim.device.mcuboot.image import read_image

SETTLE_TIMEOUT_S = 120.0
"""Longest wait for the board to come back after a reset (a swap at time scale 1 takes seconds)."""
PROGRESS_MARKS = (25, 50, 75)
"""Percentages of an upload or a swap the narration tells."""


@dataclass(frozen=True)
class DemoImage:
    """An image the demo uploads (shipped in the package's firmware folder)."""

    file: str
    version: str
    what: str

    def read(self) -> bytes:
        """The signed image."""
        return (resources.files("smpsim") / "firmware" / self.file).read_bytes()


CRASHING = DemoImage("app-2.0.0-crash.bin", "2.0.0", "a build that crashes at boot")
UPDATE = DemoImage("app-1.1.0.bin", "1.1.0", "a good build")


@dataclass
class Options:
    """How the demo runs."""

    step_delay: float = 1.0
    """Seconds between steps."""
    pause: bool = False
    """Wait for Enter before each step after the first."""


class Narrator:
    """Prints the steps and the board's events, in the order they happen."""

    def __init__(self, plane: ControlPlane, out: TextIO) -> None:
        self.plane = plane
        self.out = out
        self.started = time.monotonic()
        self.loop = asyncio.get_running_loop()
        self._swap_marks: list[int] = []
        self._jumped: str | None = None
        self._swap_type = "none"
        plane.hub.subscribe(self._event)

    def close(self) -> None:
        """Stop telling the board's events."""
        self.plane.hub.unsubscribe(self._event)

    def say(self, text: str) -> None:
        """One line, with the seconds since the demo started."""
        print(f"[{time.monotonic() - self.started:6.1f} s] {text}", file=self.out, flush=True)

    def _event(self, event: Event) -> None:
        # Called wherever the event was published: print from the loop's thread.
        self.loop.call_soon_threadsafe(self._tell, event.kind, event.data)

    def _tell(self, kind: str, data: dict[str, Any]) -> None:
        line = self._line(kind, data)
        if line:
            self.say(f"   board: {line}")

    def _line(self, kind: str, data: dict[str, Any]) -> str | None:
        phase = data.get("phase")
        if kind == "mcuboot":
            return self._mcuboot(phase, data)
        if kind == "swap":
            return self._swap(phase, data)
        if kind == "image" and phase in ("invalid", "erased"):
            where = f"slot {data.get('slot')}"
            return f"the image in {where} is not valid ({data.get('reason')})" \
                if phase == "invalid" else f"MCUboot erases {where}"
        if kind == "app" and phase == "crash":
            return f"{self._jumped or 'the application'} crashes before it confirms itself " \
                   "(hard fault); the board resets"
        if kind == "app" and phase == "hang":
            return f"{self._jumped or 'the application'} hangs; the watchdog resets the board"
        if kind == "app" and phase == "running":
            return f"{self._jumped or 'the application'} is running"
        return None

    def _mcuboot(self, phase: Any, data: dict[str, Any]) -> str | None:
        if phase == "start":
            return f"MCUboot starts (boot {self.plane.device.boot_count})"
        if phase == "decided":
            self._swap_type = str(data.get("swap_type"))
            return {"none": "MCUboot: nothing to swap",
                    "test": "MCUboot: slot 1 holds a test image: swap it in for one boot",
                    "perm": "MCUboot: slot 1 holds a confirmed image: swap it in for good",
                    "revert": "MCUboot: the image in slot 0 was never confirmed: swap back",
                    "fail": "MCUboot: the image in slot 1 failed validation",
                    }.get(self._swap_type, f"MCUboot: swap type {self._swap_type}")
        if phase == "jump":
            self._jumped = str(data.get("version"))
            how = {"revert": " (reverted)", "test": " (test boot)"}.get(self._swap_type, "")
            return f"MCUboot jumps to {self._jumped}{how}"
        if phase == "no_image":
            return "MCUboot finds no bootable image and stops"
        return None

    def _swap(self, phase: Any, data: dict[str, Any]) -> str | None:
        if phase == "start":
            self._swap_marks = list(PROGRESS_MARKS)
            resumed = " (resuming an interrupted swap)" if data.get("resumed") else ""
            return f"swapping slots 0 and 1: {data.get('ops_total')} flash operations{resumed}"
        if phase == "progress":
            percent = 100 * int(data.get("ops_done", 0)) / max(int(data.get("ops_total", 1)), 1)
            if not self._swap_marks or percent < self._swap_marks[0]:
                return None
            while self._swap_marks and percent >= self._swap_marks[0]:
                self._swap_marks.pop(0)
            return f"swap {percent:.0f} % (moving sector {data.get('sector')})"
        if phase == "done":
            return f"swap done ({data.get('ops_done')} operations)"
        return None


class Demo:
    """One run of a scenario against a started board."""

    def __init__(self, plane: ControlPlane, smp_address: str, options: Options,
                 out: TextIO = sys.stdout) -> None:
        self.plane = plane
        self.smp_address = smp_address
        self.options = options
        self.narrator = Narrator(plane, out)
        self.say = self.narrator.say

    async def run(self, name: str) -> bool:
        """Run scenario ``name``; whether the board ended as the scenario promises."""
        steps = SCENARIOS[name]
        try:
            async with SmpUdpClient(self.smp_address) as client:
                for number, (title, step) in enumerate(steps, 1):
                    if number > 1:
                        await self._between()
                    self.say(f"[{number}/{len(steps)}] {title}")
                    if not await step(self, client):
                        return False
            return True
        finally:
            self.narrator.close()

    async def _between(self) -> None:
        if self.options.pause:
            print("            (Enter: next step)", file=self.narrator.out, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        elif self.options.step_delay > 0:
            await asyncio.sleep(self.options.step_delay)

    # -- what the steps do ---------------------------------------------------------------------

    async def show_state(self, client: SmpUdpClient) -> list[dict[str, Any]]:
        """Read the image state and print one line per slot."""
        images = await client.image_state()
        for entry in images:
            flags = [f for f in ("pending", "confirmed", "active", "permanent") if entry.get(f)]
            digest = bytes(entry.get("hash", b"")).hex()[:8]
            self.say(f"   slot {entry.get('slot')}: {entry.get('version')} {digest} "
                     f"{' '.join(flags) or '(no flags)'}")
        return images

    async def upload(self, client: SmpUdpClient, image: DemoImage) -> bool:
        """Upload ``image`` to slot 1, telling the progress."""
        data = image.read()
        marks = list(PROGRESS_MARKS)
        began = time.monotonic()
        async for off in client.upload(data):
            percent = 100 * off / len(data)
            if marks and percent >= marks[0]:
                while marks and percent >= marks[0]:
                    marks.pop(0)
                self.say(f"   uploaded {percent:.0f} % ({off} of {len(data)} bytes)")
        self.say(f"   uploaded {len(data)} bytes in {time.monotonic() - began:.1f} s")
        return True

    async def test(self, client: SmpUdpClient, image: DemoImage) -> bool:
        """Mark ``image`` (uploaded) for a test boot."""
        data = image.read()
        digest = read_image(lambda off, n: data[off:off + n], len(data)).hash
        await client.test(digest)
        await self.show_state(client)
        return True

    async def reset_and_settle(self, client: SmpUdpClient, boots: int) -> bool:
        """Reset; wait until the board has booted ``boots`` more times and answers."""
        device, runner = self.plane.device, self.plane.runner
        target = device.boot_count + boots
        await client.reset()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        told_off = False
        while not (runner.state == "online" and device.boot_count >= target):
            if time.monotonic() > deadline or runner.state == "halted":
                self.say(f"   the board did not come back (it is {runner.state}, boot "
                         f"{device.boot_count})")
                return False
            if runner.state == "off" and not told_off:  # a power cut from the dashboard
                self.say("   the board is off: waiting for the power to come back")
                told_off = True
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # let the narration of the last events print first
        return True

    async def expect(self, client: SmpUdpClient, version: str) -> bool:
        """Read the state; whether slot 0 runs ``version``, confirmed."""
        images = await self.show_state(client)
        primary = next((e for e in images if e.get("slot") == 0 and e.get("image", 0) == 0),
                       None)
        if primary is not None and primary.get("version") == version \
                and primary.get("confirmed") and primary.get("active"):
            self.say(f"   done: {version} runs from slot 0, confirmed")
            return True
        self.say(f"   FAILED: slot 0 is not {version}, active and confirmed")
        return False


Step = Callable[[Demo, SmpUdpClient], Awaitable[bool]]


async def _state(demo: Demo, client: SmpUdpClient) -> bool:
    await demo.show_state(client)
    return True


async def _confirm(demo: Demo, client: SmpUdpClient) -> bool:
    await client.confirm()
    return await demo.expect(client, UPDATE.version)


SCENARIOS: dict[str, list[tuple[str, Step]]] = {
    "rollback": [
        ("The board runs its factory image, 1.0.0, confirmed", _state),
        (f"Upload {CRASHING.version} ({CRASHING.what}) to slot 1",
         lambda demo, client: demo.upload(client, CRASHING)),
        (f"Mark {CRASHING.version} for a test boot: it is pending",
         lambda demo, client: demo.test(client, CRASHING)),
        (f"Reset: MCUboot swaps {CRASHING.version} in; it crashes; at the next boot MCUboot "
         "swaps back", lambda demo, client: demo.reset_and_settle(client, boots=2)),
        ("The board is back on 1.0.0, confirmed",
         lambda demo, client: demo.expect(client, "1.0.0")),
    ],
    "update": [
        ("The board runs its factory image, 1.0.0, confirmed", _state),
        (f"Upload {UPDATE.version} ({UPDATE.what}) to slot 1",
         lambda demo, client: demo.upload(client, UPDATE)),
        (f"Mark {UPDATE.version} for a test boot: it is pending",
         lambda demo, client: demo.test(client, UPDATE)),
        (f"Reset: MCUboot swaps {UPDATE.version} in for a test boot",
         lambda demo, client: demo.reset_and_settle(client, boots=1)),
        (f"Confirm {UPDATE.version}: it stays", _confirm),
    ],
}
"""Each scenario's steps: (what the narration says, what the client does)."""
