"""The adapter side of BlueZ's D-Bus API, for the BLE transport: what smpsim asks of BlueZ
besides the GATT application and advertisement bless registers.

Low-level dbus_next messages (no introspection), on a bus connection of its own: finding the
system bus and BlueZ on it, checking the adapter, making it discoverable, following which
centrals are connected, and disconnecting them from the peripheral's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, MessageType
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.signature import Variant

from smpsim.errors import ConfigError
from smpsim.transports.ble.bless_fixes import close_bus

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
PROPERTIES = "org.freedesktop.DBus.Properties"
CALL_TIMEOUT_S = 5.0
Objects = dict[str, dict[str, dict[str, Variant]]]
"""``GetManagedObjects``: {path: {interface: {property: value}}}."""


async def connect_system_bus() -> MessageBus:
    """The D-Bus system bus (``DBUS_SYSTEM_BUS_ADDRESS`` or the standard socket), with BlueZ on
    it; a :class:`ConfigError` says what is missing."""
    where = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
    try:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    except Exception as exc:
        raise ConfigError(
            f"BLE needs BlueZ on the D-Bus system bus, and there is no system bus at {where} "
            f"({exc or type(exc).__name__}); is dbus running?") from None
    reply = await bus.call(Message(
        destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus", member="NameHasOwner", signature="s", body=[BLUEZ]))
    if reply is None or reply.message_type is MessageType.ERROR or not reply.body[0]:
        await close_bus(bus)
        raise ConfigError(f"BLE needs BlueZ, and nobody owns {BLUEZ} on the system bus at "
                          f"{where}; is bluetoothd running (systemctl start bluetooth)?")
    return bus


async def call(bus: MessageBus, path: str, interface: str, member: str, *,
               signature: str = "", body: list[Any] | None = None) -> list[Any]:
    """A method call to BlueZ; raises :class:`DBusError` with BlueZ's error."""
    reply = await asyncio.wait_for(bus.call(Message(
        destination=BLUEZ, path=path, interface=interface, member=member, signature=signature,
        body=body or [])), CALL_TIMEOUT_S)
    assert reply is not None
    if reply.message_type is MessageType.ERROR:
        raise DBusError(  # type: ignore[no-untyped-call]
            reply.error_name or "error", str(reply.body[0] if reply.body else ""))
    return list(reply.body)


async def managed_objects(bus: MessageBus) -> Objects:
    """Every object BlueZ has."""
    (objects,) = await call(bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
    result: Objects = objects
    return result


class AdapterControl:
    """One adapter (``hci0``), on a bus connection of its own."""

    def __init__(self, bus: MessageBus, name: str) -> None:
        self.bus = bus
        self.name = name
        self.path = f"/org/bluez/{name}"
        self.mock = False
        """The adapter is BlueZoo's (a mock, no radio), not a controller's."""
        self._discoverable: tuple[bool, int] | None = None
        self._handler: Callable[[Message], None] | None = None
        self._closing = False
        self._lost_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, name: str) -> AdapterControl:
        """Connect and check that ``name`` exists and can be an LE peripheral (powering it on if
        it is off); a :class:`ConfigError` says what is wrong."""
        control = cls(await connect_system_bus(), name)
        try:
            await control._check()
            control.mock = await control._is_bluezoo()
        except BaseException:
            await close_bus(control.bus)
            raise
        return control

    async def _is_bluezoo(self) -> bool:
        # BlueZoo serves its own controller object beside BlueZ's API; BlueZ has no such path.
        reply = await asyncio.wait_for(self.bus.call(Message(
            destination=BLUEZ, path="/org/bluezoo",
            interface="org.freedesktop.DBus.Introspectable", member="Introspect")),
            CALL_TIMEOUT_S)
        return (reply is not None and reply.message_type is MessageType.METHOD_RETURN
                and "org.bluezoo.Manager1" in str(reply.body[0]))

    async def _check(self) -> None:
        objects = await managed_objects(self.bus)
        adapters = sorted(p.rsplit("/", 1)[-1] for p, i in objects.items() if ADAPTER in i)
        if ADAPTER not in objects.get(self.path, {}):
            have = f"BlueZ has {', '.join(adapters)}" if adapters else \
                "BlueZ has no adapter at all (is a Bluetooth controller attached?)"
            raise ConfigError(f"no Bluetooth adapter {self.name}: {have}")
        interfaces = objects[self.path]
        for needed in ("org.bluez.GattManager1", "org.bluez.LEAdvertisingManager1"):
            if needed not in interfaces:
                raise ConfigError(f"Bluetooth adapter {self.name} has no {needed}: "
                                  "it cannot be an LE peripheral")
        if not interfaces[ADAPTER]["Powered"].value:
            log.info("BLE: powering %s on", self.name)
            await self.set("Powered", Variant("b", True))

    async def set(self, name: str, value: Variant) -> None:
        """Set an ``Adapter1`` property."""
        await call(self.bus, self.path, PROPERTIES, "Set", signature="ssv",
                   body=[ADAPTER, name, value])

    async def make_discoverable(self) -> None:
        """Discoverable for good (timeout 0), until :meth:`restore`. BlueZ (and BlueZoo) report
        an LE advertisement as discoverable only if its adapter is, and bless sets neither."""
        props = (await managed_objects(self.bus))[self.path][ADAPTER]
        self._discoverable = (bool(props["Discoverable"].value),
                              int(props["DiscoverableTimeout"].value))
        await self.set("DiscoverableTimeout", Variant("u", 0))
        await self.set("Discoverable", Variant("b", True))

    async def restore(self) -> None:
        """Give the adapter back as :meth:`make_discoverable` found it."""
        if self._discoverable is not None:
            discoverable, timeout = self._discoverable
            self._discoverable = None
            await self.set("Discoverable", Variant("b", discoverable))
            await self.set("DiscoverableTimeout", Variant("u", timeout))

    async def connected(self) -> dict[str, str]:
        """{object path: address} of the devices connected to the adapter now."""
        objects = await managed_objects(self.bus)
        return {path: str(i[DEVICE]["Address"].value) for path, i in objects.items()
                if path.startswith(self.path + "/") and DEVICE in i
                and i[DEVICE]["Connected"].value}

    async def disconnect(self, path: str) -> None:
        """Drop the link to a connected device from this side (``Device1.Disconnect``)."""
        await call(self.bus, path, DEVICE, "Disconnect")

    async def watch(self, changed: Callable[[str, bool], None]) -> None:
        """Call ``changed(path, connected)`` whenever a device of the adapter connects or
        disconnects."""
        rule = (f"type='signal',sender='{BLUEZ}',interface='{PROPERTIES}',"
                f"member='PropertiesChanged',arg0='{DEVICE}',path_namespace='{self.path}'")
        await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="AddMatch", signature="s", body=[rule]))

        def handler(message: Message) -> None:
            if (message.message_type is not MessageType.SIGNAL
                    or message.member != "PropertiesChanged" or not message.body
                    or message.body[0] != DEVICE or "Connected" not in message.body[1]):
                return
            changed(message.path or "", bool(message.body[1]["Connected"].value))

        self._handler = handler
        self.bus.add_message_handler(handler)

    async def watch_lost(self, lost: Callable[[str], None]) -> None:
        """Call ``lost(reason)`` once if the bus goes away or BlueZ leaves it (not when
        :meth:`close` closes the connection)."""
        where = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS",
                               "unix:path=/run/dbus/system_bus_socket")
        rule = (f"type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                f"member='NameOwnerChanged',arg0='{BLUEZ}'")
        await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="AddMatch", signature="s", body=[rule]))

        def owner_changed(message: Message) -> None:
            if (message.message_type is MessageType.SIGNAL
                    and message.member == "NameOwnerChanged" and message.body[:1] == [BLUEZ]
                    and not message.body[2]):
                lost(f"BlueZ ({BLUEZ}) left the system bus at {where}")

        async def bus_gone() -> None:
            with contextlib.suppress(Exception):  # gone with an error or without: gone
                await self.bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
            if not self._closing:
                lost(f"the D-Bus system bus at {where} went away")

        self.bus.add_message_handler(owner_changed)
        self._lost_task = asyncio.get_running_loop().create_task(bus_gone())

    async def close(self) -> None:
        """Stop watching and close the bus connection."""
        self._closing = True
        if self._handler is not None:
            self.bus.remove_message_handler(self._handler)
            self._handler = None
        await close_bus(self.bus)
        if self._lost_task is not None:
            self._lost_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lost_task


def address_of(path: str) -> str:
    """``/org/bluez/hci0/dev_00_00_00_00_00_02`` -> ``00:00:00:00:00:02``."""
    return path.rsplit("/dev_", 1)[-1].replace("_", ":")
