"""The control plane of one board: what it shows, what it does on request, what goes wrong on
request. The HTTP API, ``smpsim ctl``, the dashboard and the pytest plugin all use this one
object; it runs in the board's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from smpsim.board import Board
from smpsim.control import inspect
from smpsim.control.events import KEEP, Event, EventHub
from smpsim.control.faults import (
    AppFault,
    Fault,
    FaultError,
    FlashFault,
    FlashFaults,
    flip_bits,
    parse,
)
from smpsim.control.rehearsal import swap_ops
from smpsim.transports.link_faults import LinkFault, LinkFaults
from smpsim.transports.origin import Origin
from smpsim.transports.runner import Monitor

log = logging.getLogger(__name__)

FLASH_SUMMARY_S = 0.1
"""Flash operations are told in summaries, at most one per this many seconds of host time."""
PROGRESS_STEP = 0.01
"""Swap progress is told each time another 1 % of the swap's operations is done."""
CONSOLE_KEEP = 5000
BROWNOUT_OFF_S = 0.05
"""How long the power stays away in a brown-out."""
APP_OVERRIDES: dict[str, dict[str, Any]] = {
    "crash": {"boot": "crash"}, "hang": {"boot": "hang"}, "no_confirm": {"confirm": False}}
"""What an app fault makes the next boot's application do."""
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "reset": (), "power-off": (), "power-on": (), "power-cycle": ("off_s",),
    "power-cut": ("before_op", "at_swap_percent", "restore_after_s"), "time-scale": ("scale",),
    "boot-mode": ("mode",), "ble-disconnect": (), "button": ("held",)}
"""Each action and the body fields it takes."""
ACTIONS = tuple(ACTION_FIELDS)


class ActionError(ValueError):
    """An action that cannot be taken as asked; the message names the field."""


class _Traffic(Monitor):
    """SMP requests and responses into the event stream, raw (decoded when read)."""

    def __init__(self, hub: EventHub) -> None:
        self._smp = hub.smp

    def request(self, unit: bytes, origin: Origin) -> None:
        self._smp("request", origin.medium, origin.peer, unit)

    def response(self, frame: bytes, origin: Origin) -> None:
        self._smp("response", origin.medium, origin.peer, frame)


class ControlPlane:
    """Observe one started :class:`~smpsim.board.Board`, act on it, inject faults."""

    def __init__(self, board: Board, *, keep: int = KEEP) -> None:
        self.board = board
        self.device = board.device
        self.runner = board.runner
        self.loop = asyncio.get_running_loop()
        self.started_wall = time.time()
        self.hub = EventHub(self.device.clock.now, keep)
        self.console: deque[tuple[int, float, str]] = deque(maxlen=CONSOLE_KEEP)
        self._console_index = 0
        self._lock = threading.Lock()
        self.faults: dict[str, Fault] = {}
        self._next_id = 0
        self._flash_faults = FlashFaults(self._fired)
        self._pending_flash: dict[str, Any] = {}
        self._flash_told = 0.0
        self._swap: dict[str, Any] | None = None
        self._snapshot: bytes | None = None
        """The flash as the current boot found it (to rehearse its swap on)."""
        self._cut_at_percent: float | None = None
        self._brownout: AppFault | None = None
        self._brownout_armed = False
        self._closed = False
        self._attach()

    # -- wiring ------------------------------------------------------------------------------

    def _attach(self) -> None:
        device, runner = self.device, self.runner
        device.console.subscribe(self._console_line)
        device.events.listeners.append(self._device_event)
        device.flash.monitor = self._flash_op
        runner.monitor = _Traffic(self.hub)
        runner.state_listeners.append(self._state)
        self._tick()

    def close(self) -> None:
        """Stop watching (the board goes on)."""
        self._closed = True
        if self._device_event in self.device.events.listeners:
            self.device.events.listeners.remove(self._device_event)
        self.device.flash.monitor = None
        self.device.flash.faults = None
        self.runner.monitor = None
        self.runner.link_faults = None
        if self._state in self.runner.state_listeners:
            self.runner.state_listeners.remove(self._state)

    def _tick(self) -> None:
        # Tell flash work that no later operation came to flush.
        if self._closed:
            return
        self._flush_flash(force=False)
        self.loop.call_later(FLASH_SUMMARY_S * 2, self._tick)

    def _console_line(self, line: str) -> None:
        if self._closed:
            return
        with self._lock:
            self._console_index += 1
            index = self._console_index
            self.console.append((index, self.device.clock.now(), line))
        self.hub.publish("console", index=index, line=line)

    def _state(self, state: str) -> None:
        self.hub.publish("board", state=state, boot_count=self.device.boot_count)
        brownout = self._brownout
        if state in ("online", "recovery", "resetting", "halted"):
            self._flush_flash(force=True)
        if brownout is None:
            return
        if state == "booting" and not self._brownout_armed:
            # The supply sags as the board resets: the power goes before a flash operation of
            # the boot (if it does that much flash work), then comes back.
            at = random.Random(brownout.seed).randint(1, 20)
            self.device.flash.cut_power_before(at)
            self._brownout_armed = True
            self._fired(brownout, f"brown-out before flash operation {at} of the boot")
        elif state == "off" and self._brownout_armed:
            self._brownout = None
            self._brownout_armed = False
            self.loop.call_later(BROWNOUT_OFF_S,
                                 lambda: self.loop.create_task(self.runner.power_on()))
        elif state in ("online", "recovery", "resetting", "halted") and self._brownout_armed:
            self.device.flash.cancel_power_cut()  # the boot ended before the brown-out struck
            self._brownout = None
            self._brownout_armed = False

    def _device_event(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "swap" and fields.get("phase") == "start":
            self._swap_started(fields)
        elif kind == "swap" and fields.get("phase") == "done":
            self._flush_flash(force=True)
            if self._swap is not None:
                fields = {**fields, "ops_done": self._swap["done"], "ops_total":
                          max(self._swap["total"], self._swap["done"])}
            self._swap = None
        elif kind == "mcuboot" and fields.get("phase") == "start":
            self._snapshot = self.device.flash.snapshot()
        self.hub.publish(kind, **fields)
        if kind == "app" and fields.get("phase") == "fault":
            self._app_faults_fired()

    def _app_faults_fired(self) -> None:
        # The boot took the application overrides: the app faults waiting for it have struck.
        for fault in self.faults.values():
            if isinstance(fault, AppFault) and fault.kind != "brownout" and fault.hits == 0:
                fault.hits = 1
                does = {"crash": "crashes", "hang": "hangs"}.get(fault.kind,
                                                                 "does not confirm itself")
                self._fired(fault, f"the application of boot {self.device.boot_count} {does}")

    def _swap_started(self, fields: dict[str, Any]) -> None:
        total = swap_ops(self.device, self._snapshot, int(fields.get("image", 0)))
        self._swap = {"image": fields.get("image", 0), "start": self.device.flash.ops,
                      "total": total, "done": 0, "told": 0.0}
        fields["ops_total"] = total
        if self._cut_at_percent is not None and total > 0:
            at = max(1, round(total * self._cut_at_percent / 100))
            self.device.flash.cut_power_before(at)
            self.hub.publish("fault", what=f"power cut armed before operation {at} of "
                             f"{total} of the swap ({self._cut_at_percent:g} %)")
            self._cut_at_percent = None

    def _flash_op(self, kind: str, offset: int, length: int) -> None:
        flash = self.device.flash
        with self._lock:
            pending = self._pending_flash
            pending[kind + "s"] = pending.get(kind + "s", 0) + 1
            pending["bytes"] = pending.get("bytes", 0) + (length if kind == "write" else 0)
            sector = flash.sector_index(offset)
            touched = pending.setdefault("sectors", {})
            touched[sector] = kind
        swap = self._swap
        if swap is not None:
            swap["done"] = flash.ops - swap["start"]
            total = max(swap["total"], 1)
            if swap["done"] / total - swap["told"] >= PROGRESS_STEP:
                swap["told"] = swap["done"] / total
                self.hub.publish("swap", phase="progress", image=swap["image"],
                                 ops_done=swap["done"], ops_total=swap["total"],
                                 sector=sector)
        self._flush_flash(force=False)

    def _flush_flash(self, *, force: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._pending_flash or (not force and now - self._flash_told < FLASH_SUMMARY_S):
                return
            pending, self._pending_flash = self._pending_flash, {}
            self._flash_told = now
        sectors = pending.pop("sectors", {})
        self.hub.publish("flash", erases=pending.get("erases", 0),
                         writes=pending.get("writes", 0), bytes=pending.get("bytes", 0),
                         sectors={str(k): v for k, v in sorted(sectors.items())},
                         ops=self.device.flash.ops)

    def _fired(self, fault: Fault, what: str) -> None:
        self.hub.publish("fault", id=fault.id, family=_family(fault), fault=fault.kind,
                         what=what, hits=fault.hits)

    # -- what the board shows -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Board status: profile, state, boot count, uptimes, time scale, endpoints, firmware."""
        device, runner = self.device, self.runner
        running = device.running
        return {
            "profile": device.profile.name, "description": device.profile.description,
            "board": device.profile.board.target, "state": runner.state,
            "boot_count": device.boot_count, "boot_mode": device.boot_mode,
            "button_held": device.button_held,
            "uptime_s": round(device.uptime_s(), 6) if running else None,
            "clock_s": round(device.clock.now(), 6),
            "wall_s": round(time.time() - self.started_wall, 3),
            "time_scale": device.clock.time_scale,
            "endpoints": [{"medium": e.medium, "where": e.describe()}
                          for e in self.board.endpoints],
            "firmware": {"version": device.build_version if running else None,
                         "zephyr": device.profile.firmware.build_version},
            "flash_file": str(self.board.flash_path) if self.board.flash_path else None,
            "events": self.hub.seq,
        }

    def slots(self) -> list[dict[str, Any]]:
        """Every image slot (see :func:`smpsim.control.inspect.slots`)."""
        return inspect.slots(self.device)

    def flash(self) -> dict[str, Any]:
        """Partitions and sectors (see :func:`smpsim.control.inspect.flash_map`)."""
        return inspect.flash_map(self.device)

    def console_since(self, index: int) -> list[dict[str, Any]]:
        """Console lines after line ``index`` (1 is the first line since start)."""
        with self._lock:
            lines = [entry for entry in self.console if entry[0] > index]
        return [{"index": i, "uptime_s": round(t, 6), "line": line} for i, t, line in lines]

    def stats(self) -> dict[str, Any]:
        """The statistics groups as stat_mgmt shows them, and the flash's own counters."""
        device = self.device
        flash = device.flash
        return {
            "groups": {g.name: dict(device.stats.values(g)) for g in device.stats.groups},
            "flash": {"ops": flash.ops, "erases": flash.erases, "writes": flash.writes,
                      "bytes_written": flash.bytes_written, "reads": flash.reads,
                      "bytes_read": flash.bytes_read,
                      "max_erase_count": max(flash.sector_erases, default=0)},
            "boot_count": device.boot_count,
        }

    def events(self, since: int = 0, last: int | None = None) -> list[Event]:
        """Kept events after ``since``, or the ``last`` ones."""
        return self.hub.last(last) if last is not None else self.hub.since(since)

    # -- actions --------------------------------------------------------------------------------

    async def act(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Carry out action ``name`` (one of :data:`ACTIONS`) with its JSON ``body``."""
        handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = {
            "reset": self._reset, "power-off": self._power_off, "power-on": self._power_on,
            "power-cycle": self._power_cycle, "power-cut": self._power_cut,
            "time-scale": self._time_scale, "boot-mode": self._boot_mode,
            "ble-disconnect": self._ble_disconnect, "button": self._button,
        }.get(name)
        if handler is None:
            raise ActionError(f"no action {name!r}; known: {', '.join(ACTIONS)}")
        if not isinstance(body, dict):
            raise ActionError("the body must be a JSON object")
        # Unknown fields are refused before the handler acts: a refused request changes nothing.
        unknown = sorted(set(body) - set(ACTION_FIELDS[name]))
        if unknown:
            raise ActionError(f"unknown field {unknown[0]!r} for {name}; it takes "
                              f"{', '.join(ACTION_FIELDS[name]) or 'no fields'}")
        result = await handler(dict(body))
        self.hub.publish("power" if name.startswith("power") else "action", action=name,
                         **{k: v for k, v in result.items() if k != "state"})
        return {"action": name, **result, "state": self.runner.state}

    async def _reset(self, fields: dict[str, Any]) -> dict[str, Any]:
        await self.runner.reset()
        return {}

    async def _power_off(self, fields: dict[str, Any]) -> dict[str, Any]:
        self.runner.power_off()
        return {}

    async def _power_on(self, fields: dict[str, Any]) -> dict[str, Any]:
        await self.runner.power_on()
        return {}

    async def _power_cycle(self, fields: dict[str, Any]) -> dict[str, Any]:
        off_s = _number(fields, "off_s", 0.5, 0.0, 3600.0)
        self.runner.power_off()
        await asyncio.sleep(off_s)
        await self.runner.power_on()
        return {"off_s": off_s}

    async def _power_cut(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``{}`` now; ``{"before_op": N}`` before the Nth flash operation from now;
        ``{"at_swap_percent": P}`` at P % of the next swap's operations. The board stays off
        (``power-on`` brings it back) unless ``restore_after_s`` is given."""
        before = fields.pop("before_op", None)
        percent = fields.pop("at_swap_percent", None)
        restore = fields.pop("restore_after_s", None)
        if before is not None and percent is not None:
            raise ActionError("before_op and at_swap_percent: give one of them")
        if restore is not None:
            restore = _number({"restore_after_s": restore}, "restore_after_s", 0, 0.0, 3600.0)
        if before is not None:
            if isinstance(before, bool) or not isinstance(before, int) or before < 1:
                raise ActionError(f"before_op: {before!r} is not an integer of 1 or more")
            self.device.flash.cut_power_before(before)
            armed: dict[str, Any] = {"before_op": before}
        elif percent is not None:
            value = _number({"at_swap_percent": percent}, "at_swap_percent", 0, 0.0, 100.0)
            self._cut_at_percent = value
            armed = {"at_swap_percent": value}
        else:
            self.runner.power_off()
            armed = {"now": True}
        if restore is not None:
            self.loop.create_task(self._restore_after(restore))
            armed["restore_after_s"] = restore
        return armed

    async def _restore_after(self, delay: float) -> None:
        while self.runner.state != "off":
            await asyncio.sleep(0.01)
        await asyncio.sleep(delay)
        await self.runner.power_on()

    async def _time_scale(self, fields: dict[str, Any]) -> dict[str, Any]:
        if "scale" not in fields:
            raise ActionError("scale: missing (1.0 real time, 0 instant)")
        scale = _number(fields, "scale", 0, 0.0, 1000.0)
        self.runner.set_time_scale(scale)
        return {"scale": scale}

    async def _boot_mode(self, fields: dict[str, Any]) -> dict[str, Any]:
        if "mode" not in fields:
            raise ActionError("mode: missing (0 normal, 1 bootloader)")
        mode = fields.pop("mode")
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 255:
            raise ActionError(f"mode: {mode!r} is not an integer from 0 to 255")
        self.device.boot_mode = mode
        return {"mode": mode}

    async def _button(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``{"held": true}`` holds MCUboot's recovery button (it is read at each reset),
        ``{"held": false}`` lets go of it."""
        held = fields.pop("held", None)
        if not isinstance(held, bool):
            raise ActionError(f"held: {held!r} is not true or false")
        if held:
            self.device.hold_button()
        else:
            self.device.release_button()
        return {"held": held}

    async def _ble_disconnect(self, fields: dict[str, Any]) -> dict[str, Any]:
        dropped = 0
        found = False
        for endpoint in self.board.endpoints:
            disconnect = getattr(endpoint, "disconnect_centrals", None)
            if disconnect is not None:
                found = True
                dropped += await disconnect()
        if not found:
            raise ActionError("this board serves no BLE")
        return {"disconnected": dropped}

    # -- faults ---------------------------------------------------------------------------------

    def add_fault(self, spec: Any) -> dict[str, Any]:
        """Take a fault (JSON description); raises :class:`FaultError` naming the field."""
        areas = {a.name: (a.offset, a.size) for a in self.device.partitions.areas.values()}
        fault = parse(spec, areas, self.device.flash.size)
        self._next_id += 1
        fault.id = f"f{self._next_id}"
        self.faults[fault.id] = fault
        if isinstance(fault, LinkFault):
            if self.runner.link_faults is None:
                self.runner.link_faults = LinkFaults(self._fired)
            self.runner.link_faults.add(fault)
        elif isinstance(fault, FlashFault):
            if fault.kind == "bit_flip":
                bits = flip_bits(self.device.flash, fault)
                self._fired(fault, f"{len(bits)} bits flipped from {fault.offset:#x}")
            else:
                self._flash_faults.faults.append(fault)
                self.device.flash.faults = self._flash_faults
        elif fault.kind == "brownout":
            self._brownout = fault
        else:
            self.device.next_boot_app.update(APP_OVERRIDES[fault.kind])
        self.hub.publish("fault", id=fault.id, family=_family(fault), fault=fault.kind,
                         what="added")
        return self.describe(fault)

    def describe(self, fault: Fault) -> dict[str, Any]:
        """A fault as the API lists it."""
        fields = {k: v for k, v in asdict(fault).items() if k not in ("rng", "id", "hits")}
        return {"id": fault.id, "family": _family(fault), **fields, "hits": fault.hits,
                "active": self._active(fault)}

    def _active(self, fault: Fault) -> bool:
        if isinstance(fault, LinkFault):
            return self.runner.link_faults is not None and fault in \
                self.runner.link_faults.faults
        if isinstance(fault, FlashFault):
            return fault in self._flash_faults.faults
        if fault.kind == "brownout":
            return self._brownout is fault
        return fault.hits == 0 and bool(self.device.next_boot_app)

    def list_faults(self) -> list[dict[str, Any]]:
        """Every fault added (active or spent), oldest first."""
        return [self.describe(f) for f in self.faults.values()]

    def clear_fault(self, fault_id: str) -> bool:
        """Clear one fault; False if there is none with that id."""
        fault = self.faults.pop(fault_id, None)
        if fault is None:
            return False
        if isinstance(fault, LinkFault) and self.runner.link_faults is not None:
            self.runner.link_faults.remove(fault_id)
            if not self.runner.link_faults.faults:
                self.runner.link_faults = None  # a clean link costs nothing again
        elif isinstance(fault, FlashFault) and fault in self._flash_faults.faults:
            self._flash_faults.faults.remove(fault)
        elif isinstance(fault, AppFault):
            if fault.kind == "brownout":
                if self._brownout_armed:
                    self.device.flash.cancel_power_cut()
                self._brownout, self._brownout_armed = None, False
            else:
                self.device.next_boot_app.clear()
        self.hub.publish("fault", id=fault_id, fault=fault.kind, what="cleared")
        return True

    def clear_faults(self) -> int:
        """Clear every fault; returns how many there were."""
        ids = list(self.faults)
        for fault_id in ids:
            self.clear_fault(fault_id)
        return len(ids)


def _family(fault: Fault) -> str:
    return "link" if isinstance(fault, LinkFault) else \
        "flash" if isinstance(fault, FlashFault) else "app"


def _number(fields: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = fields.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not low <= value <= high:  # NaN fails the comparison too
        raise ActionError(f"{key}: {value!r} is not a number from {low:g} to {high:g}")
    return float(value)


__all__ = ["ActionError", "ControlPlane", "FaultError"]
