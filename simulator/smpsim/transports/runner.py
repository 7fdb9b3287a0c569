"""One event loop, one device: serves units from every transport in arrival order.

Like the MCU's management work queue, the device handles one request at a time. A reply whose
busy time rounds to nothing at the current time scale is sent at once, inside the transport's
callback (the fast path); otherwise the runner waits for the busy period's deadline, counted
from the request's arrival, and queues what arrives meanwhile (each queued request's deadline
follows the last one's, and an answer the host timer sent late shortens the next busy period:
over an upload the waits keep the board's schedule instead of adding up the timer's lateness).
While the device reboots it is silent: units are dropped, as a board drops them.

The device may also reset itself (a crashing application, the watchdog on a hung one) or never
come up (no bootable image); a power cut in the middle of a flash operation leaves it off.

At a time scale above 0 a boot is lived as it goes, on a stack of its own (a greenlet) in the
event loop's thread: each busy period (an erase, a hash, the kernel's start) is waited out on a
loop timer before the work it stands for, up to a deadline counted from the reset, so the
work's own CPU time does not add up, and a fleet of boards reset together comes back on each
board's own schedule. No thread per boot: a thousand boot threads spent more CPU starting,
waking and handing the GIL around than booting.

When MCUboot stays in serial recovery, its own server answers what the serial line submits
(from the ``serial`` medium) and every other transport gets silence, as MCUboot serves only its
UART.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from smpsim.device.flash import PowerLoss
from smpsim.device.mcu import BootOutcome, Device
from smpsim.mcumgr.dispatcher import ResetEffect
from smpsim.mcumgr.server import Reply, Server
from smpsim.transports.origin import Origin

if TYPE_CHECKING:
    import greenlet

    from smpsim.mcumgr.boot_serial import BootSerialServer
    from smpsim.transports.link_faults import LinkFaults

log = logging.getLogger(__name__)

Send = Callable[[bytes], None]

PACE_SLACK_S = 0.002
"""A paced boot runs this far ahead of its schedule at most (a flash operation lands in the
flash file up to this much early)."""

LOCAL = Origin("local")
"""The origin of units submitted without one (tests, the plugin)."""
RECOVERY_MEDIA = ("serial", "local")
"""Where MCUboot's serial recovery takes requests from: its UART (and callers in-process)."""


class Monitor:
    """Watches the SMP traffic of a runner (the control plane's); does nothing by default."""

    def request(self, unit: bytes, origin: Origin) -> None:
        """A request unit reached the board (after link faults)."""

    def response(self, frame: bytes, origin: Origin) -> None:
        """A response frame left the board (before link faults)."""


class _Cut:
    """Cuts a paced boot short (a reset, the power, the emulator stopping): a boot waiting for
    its next deadline is woken at once and stops there."""

    def __init__(self) -> None:
        self.is_set = False
        self.timer: asyncio.Handle | None = None
        """The waiting boot's wake-up, while it waits."""
        self.resume: Callable[[], None] | None = None

    def set(self) -> None:
        self.is_set = True
        timer, resume = self.timer, self.resume
        if timer is not None and resume is not None:
            timer.cancel()
            self.timer = asyncio.get_running_loop().call_soon(resume)


class Runner:
    """Serialises requests to one device and carries out the effects of its replies."""

    def __init__(self, device: Device, server: Server | None = None) -> None:
        self.device = device
        self.server = server if server is not None else Server(device)
        mcuboot = device.profile.mcuboot
        self._has_recovery = mcuboot is not None and mcuboot.serial_recovery.enabled
        self._recovery_server: BootSerialServer | None = None
        self.scale = device.clock.time_scale
        self._queue: deque[tuple[bytes, Send]] = deque()
        self._busy = False
        self._late = 0.0
        """How long after the board's schedule the last answer left (see :meth:`_busy_until`)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._reset_timer: asyncio.TimerHandle | None = None
        self._generation = 0
        self._boot_greenlet: greenlet.greenlet | None = None
        self._boot_cut: _Cut | None = None
        """Set to cut the paced boot in progress short (a reset, or the emulator stopping)."""
        self.online = asyncio.Event()
        """Set while the device is up and answering."""
        self._up = False
        """:attr:`online`'s state, read per request without a call."""
        self.boot_listeners: list[Callable[[], None]] = []
        """Called in the loop each time the application has come up (what runs after boot:
        the serial line starts its shell); not when MCUboot stays in serial recovery."""
        self.down_listeners: list[Callable[[], None]] = []
        """Called in the loop each time the device goes down (reset, power cut): the BLE
        transport drops its connections, as a board's radio does."""
        self.monitor: Monitor | None = None
        """Told every request and response (the control plane's trace)."""
        self.link_faults: LinkFaults | None = None
        """Injected link faults; ``None``: a clean link (and no cost on the request path)."""
        self.scale_listeners: list[Callable[[float], None]] = []
        """Called with the new time scale when it changes."""
        self.state = "off"
        self._cut_boot = False
        """``off`` (no power, or a power cut), ``booting``, ``online``, ``resetting`` (the
        application crashed or hung: the board resets itself), ``halted`` (MCUboot found
        nothing to boot)."""
        self.state_listeners: list[Callable[[str], None]] = []
        """Called in the loop with each new :attr:`state`."""
        self.busy_listeners: list[Callable[[float, Reply], None]] = []
        """Called in the loop with the wall time a reply is about to be held back."""

    async def start(self) -> None:
        """Power on: boot the device and wait out its boot time."""
        await self._boot()

    @property
    def recovery_server(self) -> BootSerialServer | None:
        """MCUboot's serial recovery server, on builds that have one (made when first asked
        for: most boards never enter recovery, and a start that does not load it is sooner)."""
        if self._recovery_server is None and self._has_recovery:
            from smpsim.mcumgr.boot_serial import BootSerialServer
            self._recovery_server = BootSerialServer(self.device)
        return self._recovery_server

    @property
    def in_recovery(self) -> bool:
        """MCUboot is serving serial recovery (the application is not running)."""
        return self._has_recovery and self.device.in_recovery

    def _handle(self, unit: bytes) -> Reply:
        if self.in_recovery:
            assert self.recovery_server is not None
            return self.recovery_server.handle(unit)
        return self.server.handle(unit)

    def submit(self, unit: bytes, send: Send, origin: Origin = LOCAL) -> None:
        """A unit of bytes arrived; ``send`` delivers each response frame back to its sender."""
        faults = self.link_faults
        if faults is not None:
            loop = asyncio.get_running_loop()
            out = self._faulty_send(send, origin, faults)
            for delay, copy in faults.inbound(unit, origin, loop.time()):
                if delay > 0:
                    loop.call_later(delay, self._take, copy, out, origin)
                else:
                    self._take(copy, out, origin)
            return
        monitor = self.monitor
        if monitor is not None:
            send = self._monitored_send(send, origin, monitor)
        self._take(unit, send, origin)

    def _monitored_send(self, send: Send, origin: Origin, monitor: Monitor) -> Send:
        def out(frame: bytes) -> None:
            monitor.response(frame, origin)
            send(frame)
        return out

    def _faulty_send(self, send: Send, origin: Origin, faults: LinkFaults) -> Send:
        monitor = self.monitor
        loop = asyncio.get_running_loop()

        def out(frame: bytes) -> None:
            if monitor is not None:
                monitor.response(frame, origin)
            for delay, copy in faults.outbound(frame, origin, loop.time()):
                if delay > 0:
                    loop.call_later(delay, send, copy)
                else:
                    send(copy)
        return out

    def _take(self, unit: bytes, send: Send, origin: Origin) -> None:
        if self.monitor is not None:
            self.monitor.request(unit, origin)
        recovery = self._has_recovery and self.device.in_recovery
        if recovery and origin.medium not in RECOVERY_MEDIA:
            return  # MCUboot serves its UART alone
        if self._busy or not self._up:
            if self._up:
                self._queue.append((unit, send))
            return
        scale = self.scale
        began = time.monotonic() if scale > 0 else 0.0
        try:
            reply = self._handle(unit) if recovery else self.server.handle(unit)
        except PowerLoss as exc:
            self._power_lost(exc)
            return
        if reply.busy_s * scale <= 0:
            for frame in reply.frames:
                send(frame)
            if reply.effects:  # an os reset's timer: set now, no task to carry it a pass later
                self._apply(reply)
            return
        self._busy = True
        self._spawn(self._finish(reply, send, began))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, reply: Reply, send: Send, began: float) -> None:
        try:
            while True:
                if reply.busy_s > 0 and self.scale > 0:
                    for listener in self.busy_listeners:
                        listener(reply.busy_s * self.scale, reply)
                    await self._busy_until(began + reply.busy_s * self.scale)
                for frame in reply.frames:
                    send(frame)
                self._apply(reply)
                if not self._queue or not self._up:
                    return
                unit, send = self._queue.popleft()
                began = time.monotonic()
                reply = self._handle(unit)
        except PowerLoss as exc:
            self._power_lost(exc)
        finally:
            self._busy = False

    async def _busy_until(self, deadline: float) -> None:
        """Wait for the end of a busy period, due at ``deadline`` (host monotonic time) on the
        board's schedule. The loop's timer wakes late (epoll counts whole milliseconds): the
        answer leaves that much after the board's, so the next request comes that much late
        too, and the next busy period is cut as much. Each answer is then late by one wake-up
        at most, against the board's schedule, instead of by the sum of all of them (+11 % over
        an upload of 10 ms chunks)."""
        due = deadline - self._late
        ahead = due - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
        self._late = time.monotonic() - due

    def _apply(self, reply: Reply) -> None:
        for effect in reply.effects:
            if isinstance(effect, ResetEffect):
                self._schedule_reset(effect.delay_s * self.scale)

    def _schedule_reset(self, delay: float) -> None:
        # One k_timer in Zephyr, restarted by each reset request: the board reboots once,
        # ``delay`` after the last request.
        if self._reset_timer is not None:
            self._reset_timer.cancel()
        self._reset_timer = asyncio.get_running_loop().call_later(delay, self._reset_timer_fired)

    def _reset_timer_fired(self) -> None:
        self._reset_timer = None
        boot = self._boot_greenlet
        if self.scale > 0 and (boot is None or boot.dead):
            # No boot to wind down first: the paced boot starts here and its end is carried
            # out where it ends (no task to start it, wake it and end it: a fleet reset
            # together runs a thousand of these at once).
            self._stop()
            log.info("device reset")
            generation = self._generation
            self._set_state("booting")
            self._begin_paced_boot(generation)
        else:
            self._spawn(self.reset())

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            for listener in self.state_listeners:
                listener(state)

    def _power_lost(self, exc: PowerLoss) -> None:
        log.warning("%s: the board is off", exc)
        self._stop()
        self._set_state("off")

    def power_off(self) -> None:
        """Take the power away now (between two flash operations: a boot in progress is cut
        at its next one). The board stays off until :meth:`power_on`."""
        if self.state == "booting" and not self.device.flash.power_cut_armed:
            self.device.flash.cut_power_before(1)
            self._cut_boot = True
        self._stop()
        self._set_state("off")

    async def power_on(self) -> None:
        """Power the board on (if it is off) and wait until its boot has ended."""
        if self._cut_boot:  # the boot it was meant to cut may have ended without flash work
            self.device.flash.cancel_power_cut()
            self._cut_boot = False
        if self.state == "off":
            await self._boot()

    def set_time_scale(self, scale: float) -> None:
        """Run the board at another time scale from now on (its clock, its flash and boot
        timing, and the endpoints that pace their links: they listen to ``scale_listeners``)."""
        self.device.clock.set_time_scale(scale)
        self.scale = scale
        for listener in self.scale_listeners:
            listener(scale)

    def _set_online(self, up: bool) -> None:
        """:attr:`online` and its copy read per request, changed together."""
        self._up = up
        if up:
            self.online.set()
        else:
            self.online.clear()

    def _stop(self) -> None:
        self._generation += 1
        self._late = 0.0  # a new schedule from the reset on
        self._set_online(False)
        if self._boot_cut is not None:  # the reset line cuts a boot short, as power does
            self._boot_cut.set()
        if self._reset_timer is not None:  # a reset stops every timer
            self._reset_timer.cancel()
            self._reset_timer = None
        self.device.power_off()
        self._queue.clear()
        for listener in self.down_listeners:
            listener()

    async def reset(self) -> None:
        """Reset the device now: silent until it has booted again."""
        self._stop()
        log.info("device reset")
        await self._boot()

    async def _boot(self) -> None:
        generation = self._generation
        self._set_state("booting")
        if self.scale > 0:
            # Lived, not slept off afterwards: every flash operation of a swap lands in the
            # flash file at its real moment, so killing the process mid-swap cuts it there.
            await self._paced_boot(generation)
            return
        try:
            outcome = self.device.boot()
        except PowerLoss as exc:
            self._boot_cut_off(generation, exc)
            return
        self._boot_ended(generation, outcome)

    def _boot_cut_off(self, generation: int, exc: PowerLoss) -> None:
        if generation == self._generation:  # else a reset (or the end) cut it on purpose
            self._power_lost(exc)

    def _boot_ended(self, generation: int, outcome: BootOutcome) -> None:
        if generation != self._generation:
            return  # reset again meanwhile: that boot decides
        if outcome.running:
            self._set_online(True)
            self._set_state("online")
            for listener in self.boot_listeners:
                listener()
        elif outcome.recovery:
            self._set_online(True)
            self._set_state("recovery")
        elif outcome.reset_after_s is not None:
            log.warning("%s", outcome.reason)
            self._set_state("resetting")
            # At time scale 0 a crash loop must not spin: give the loop a breath per reboot.
            self._schedule_reset(max(outcome.reset_after_s * self.scale, 0.001))
        else:
            log.error("the board does not start: %s", outcome.reason)
            self._set_state("halted")

    async def _paced_boot(self, generation: int) -> None:
        await self._boot_gone()  # a boot cut short stops at its next busy period
        await self._begin_paced_boot(generation)

    def _begin_paced_boot(self, generation: int) -> asyncio.Future[None]:
        """Start a paced boot (none in progress): it runs up to its first wait; the future is
        done once its end has been carried out (:meth:`_conclude`)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        cut = self._boot_cut = _Cut()
        deadline = time.monotonic()
        # The boot's own stack: it runs on the loop's thread, a slice at a time, and each
        # wait hands the loop back until the wait's deadline (a timer, no thread, no GIL to
        # hand around).
        boot: greenlet.greenlet
        ended: list[BootOutcome | BaseException] = []

        def resume() -> None:
            cut.timer = None
            if not boot.dead:
                boot.switch()
                if ended:
                    self._conclude(generation, ended[0], done)

        def pace(seconds: float) -> None:
            nonlocal deadline
            deadline += seconds * self.scale
            ahead = deadline - time.monotonic()
            # Waits shorter than PACE_SLACK_S are left to the next longer one (the deadline
            # keeps the sum): a thousand boots woken for every 41 us word write would spend
            # their time in timers.
            if ahead > PACE_SLACK_S and not cut.is_set:
                cut.timer = loop.call_at(loop.time() + ahead, resume)
                cut.resume = resume
                boot.parent.switch()
            if cut.is_set:
                raise PowerLoss("the boot was cut short")

        def body() -> None:
            clock = self.device.clock
            clock.pacer = pace
            try:
                ended.append(self.device.boot())
            except BaseException as exc:
                ended.append(exc)
            finally:
                clock.pacer = None
                # No cycle left (the cut and its wake-up): the boot's frames go when the next
                # boot replaces them, not at the cycle collector's next pass.
                cut.timer = cut.resume = None

        import greenlet  # only a paced boot needs a stack of its own

        boot = self._boot_greenlet = greenlet.greenlet(body)
        boot.switch()  # up to its first wait
        if ended:
            self._conclude(generation, ended[0], done)
        return done

    def _conclude(self, generation: int, result: BootOutcome | BaseException,
                  done: asyncio.Future[None]) -> None:
        """A paced boot has ended: carried out right where its last slice ends, in the loop's
        own stack, so the board answers from this moment, not one loop pass later behind every
        other board's ready work (a fleet reset together ends hundreds of boots at once)."""
        if done.done():  # the runner was closed: nobody waits for the boot
            return
        try:
            if isinstance(result, PowerLoss):
                self._boot_cut_off(generation, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                self._boot_ended(generation, result)
        except BaseException as exc:  # delivered to the boot's awaiter, raised there
            done.set_exception(exc)
            return
        done.set_result(None)

    async def _boot_gone(self) -> None:
        boot = self._boot_greenlet
        while boot is not None and not boot.dead:
            await asyncio.sleep(0.001)

    async def close(self) -> None:
        """Cancel pending work (the process is going away); a boot in progress stops before
        its next flash operation, so the flash file can be closed."""
        if self._reset_timer is not None:
            self._reset_timer.cancel()
            self._reset_timer = None
        self._generation += 1  # a boot cut short now ends quietly
        if self._boot_cut is not None:
            self._boot_cut.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._boot_gone()
