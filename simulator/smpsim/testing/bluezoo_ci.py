# SPDX-License-Identifier: GPL-2.0-only
# This one file of smpsim is GPL-2.0-only: it imports and patches BlueZoo (GPL-2.0-only). smpsim
# never imports it; :mod:`smpsim.testing.mockbus` runs it as a program of its own.
"""BlueZoo 1.0.2 (the BlueZ D-Bus mock) with the fixes smpsim's BLE tests and browsers need; run
like ``bluezoo``.

    BLUEZOO_PERIPHERAL_ONLY=hci1 python -m smpsim.testing.bluezoo_ci -q --auto-enable \\
        --scan-interval 0.1 -a 00:00:00:00:00:01 -a 00:00:00:00:00:02

(bluezoo's options; ``--scan-interval`` here also takes fractions of a second.)

Each patch makes the mock behave as real BlueZ does where a client depends on it; they target
bluezoo 1.0.2's internals, which is why it is pinned:

1. a known device is re-announced (``PropertiesChanged(RSSI)``) on every scan pass, as
   BlueZ does for every advertisement it hears; bleak registers its detection callback after
   ``StartDiscovery`` and would otherwise miss a device reported once or known from before.
2. ``BLUEZOO_PERIPHERAL_ONLY=hci1`` makes hci1 (the board's) report
   ``Roles=["peripheral"]``, so bleak's default adapter (smpclient and smpmgr take no adapter
   argument) is hci0, the central. Chromium ignores ``Roles`` and always takes the first adapter,
   hci0: that is why the central is hci0 and the board hci1.
3. a disconnect removes the GATT objects exported under the central's device, or the
   next ``Connect()`` fails re-exporting them (EEXIST).
4. a disconnect reaches both ends of the link. BlueZoo keeps two device objects per link
   (the central's view of the peripheral and the peripheral's view of the central) and a
   ``Disconnect()`` clears only one of them; on BlueZ, a peripheral that calls
   ``Device1.Disconnect()`` on its central drops the LE link, and the central sees
   ``Connected=False``. smpsim does exactly that when the board resets.
5. ``--scan-interval`` takes fractions of a second: with patch 1 a report bleak missed
   costs one scan pass, and at bluezoo's 1 s minimum every reconnect after a reset paid it.
6. (browsers) an LE device's ``AdvertisingFlags`` are the advertisement's flags, never empty:
   BlueZoo publishes an empty array, whose first byte Chromium reads unchecked (it dies with
   SIGILL). An LE advertiser that is discoverable sends "LE General Discoverable, BR/EDR not
   supported", ``0x06``; that is what the mock reports now.
7. (browsers) a notifying characteristic has its Client Characteristic Configuration
   descriptor (``0x2902``) on the central's side, as BlueZ shows every descriptor it discovered.
   Chromium looks for it before ``StartNotify`` and fails ``startNotifications()`` with "GATT
   Error: Not supported" without it. It is added with the characteristic on ``Connect()`` and
   goes with it on disconnect (patch 3); reading it gives the notification state, writing it is
   refused as BlueZ refuses it (``StartNotify`` is the way).
8. (browsers) an LE connection needs the peripheral to advertise: BlueZoo connects to any device
   object it knows, and a board that is rebooting (its GATT service withdrawn) then shows a
   connection without services, which Chromium keeps for good. BlueZ's ``Connect()`` fails
   (``le-connection-abort-by-local``) when the peripheral never answers; so does the mock's now.
"""

from __future__ import annotations

# ruff: noqa: N802  (D-Bus method and property names are BlueZ's)
import argparse
import asyncio
import logging
import os
from typing import Any

import sdbus
from bluezoo import bluezoo as bz
from bluezoo.adapter import Adapter
from bluezoo.device import Device
from bluezoo.exceptions import DBusBluezFailedError, DBusBluezNotPermittedError
from bluezoo.gatt import GattCharacteristicClientLink
from bluezoo.interfaces.GattDescriptor import GattDescriptorInterface
from bluezoo.utils import BluetoothAddress, dbus_method_async_except_logging

_orig_add_device = Adapter.add_device


async def _add_device(self: Any, device: Any) -> None:
    device.attach_to_adapter(self)
    path = device.get_object_path()
    if path in self.devices:
        known = self.devices[path]
        await known.properties_sync(device)
        known.properties_changed.emit(("org.bluez.Device1", {"RSSI": ("n", known.rssi)}, []))
        return
    await _orig_add_device(self, device)


Adapter.add_device = _add_device

_PERIPHERAL_ONLY = {a.strip() for a in os.environ.get("BLUEZOO_PERIPHERAL_ONLY", "").split(",")
                    if a.strip()}
_roles = Adapter.__dict__["Roles"]
_orig_roles = _roles.property_getter
_roles.property_getter = (lambda self: ["peripheral"] if f"hci{self.id}" in _PERIPHERAL_ONLY
                          else _orig_roles(self))

# 6. An LE device's advertising flags: LE General Discoverable, BR/EDR not supported.
LE_FLAGS = b"\x06"
_flags = Device.__dict__["AdvertisingFlags"]
_orig_flags = _flags.property_getter
_flags.property_getter = (lambda self: _orig_flags(self)
                          or (LE_FLAGS if self.is_le or not self.is_br_edr else b""))

# 7. The CCC descriptor of a notifying characteristic, on the central's side.
CCC_UUID = "00002902-0000-1000-8000-00805f9b34fb"


class ClientConfiguration(GattDescriptorInterface):
    """The Client Characteristic Configuration descriptor of one characteristic link."""

    def __init__(self, characteristic: Any) -> None:
        super().__init__()
        self.characteristic = characteristic
        # Apart from the server's handles (a counter from 1): never the same object path.
        self.handle = 0x8000 | characteristic.client.Handle.get()

    def get_object_path(self) -> str:
        return f"{self.characteristic.get_object_path()}/desc{self.handle:04x}"

    def value(self) -> bytes:
        notifying = self.characteristic.client.Notifying.get(False)
        return b"\x01\x00" if notifying else b"\x00\x00"

    @sdbus.dbus_method_async_override()
    @dbus_method_async_except_logging
    async def ReadValue(self, flags: dict[str, tuple[str, Any]]) -> bytes:
        return self.value()

    @sdbus.dbus_method_async_override()
    @dbus_method_async_except_logging
    async def WriteValue(self, value: bytes, flags: dict[str, tuple[str, Any]]) -> None:
        raise DBusBluezNotPermittedError("Write not permitted")

    @sdbus.dbus_property_async_override()
    def UUID(self) -> str:
        return CCC_UUID

    @sdbus.dbus_property_async_override()
    def Characteristic(self) -> str:
        return str(self.characteristic.get_object_path())

    @sdbus.dbus_property_async_override()
    def Value(self) -> bytes:
        return self.value()

    @sdbus.dbus_property_async_override()
    def Flags(self) -> list[str]:
        return ["read", "write"]

    @sdbus.dbus_property_async_override()
    def Handle(self) -> int:
        return self.handle


def _has_ccc(link: Any) -> bool:
    """The server exports a CCC of its own under this characteristic."""
    prefix = link.client.get_object_path() + "/"
    return any(path.startswith(prefix) and obj.UUID.get("").lower() == CCC_UUID
               for app in link.service.device.peer_adapter.gatt_apps.values()
               for path, obj in app.objects.items())


_orig_export = bz.BluezMockService.export_object


def _export_object(self: Any, path: str, obj: Any) -> None:
    _orig_export(self, path, obj)
    if (isinstance(obj, GattCharacteristicClientLink)
            and {"notify", "indicate"} & set(obj.client.Flags.get([])) and not _has_ccc(obj)):
        ccc = ClientConfiguration(obj)
        _orig_export(self, ccc.get_object_path(), ccc)
        obj.smpsim_ccc = ccc


bz.BluezMockService.export_object = _export_object

# 8. No LE connection to a peripheral that does not advertise.
_orig_connect = Device.connect


async def _connect(self: Any, uuid: str | None = None) -> None:
    if not self.is_br_edr and not self.peer_adapter.advertisements:
        raise DBusBluezFailedError("le-connection-abort-by-local")
    await _orig_connect(self, uuid)


Device.connect = _connect

_orig_disconnect = Device.disconnect


async def _disconnect(self: Any, uuid: str | None = None) -> None:
    await _orig_disconnect(self, uuid)
    for link in reversed(list(self.services.values())):
        ccc = getattr(link, "smpsim_ccc", None)
        if ccc is not None:
            self.peer_adapter.mock.remove_object(ccc)
            link.smpsim_ccc = None
        subscription = getattr(link, "client_props_changed_subscription", None)
        if subscription is not None:
            subscription.unsubscribe()
        for name in ("f_read", "f_write"):
            if getattr(link, name, None) is not None:
                getattr(link, name).close()
                setattr(link, name, None)
        self.peer_adapter.mock.remove_object(link)
    self.services.clear()
    if self.services_resolved:
        await self.ServicesResolved.set_async(False)
        if self.peer is not None:
            await self.peer.ServicesResolved.set_async(False)
    # The other end of the link: the peer adapter's device object for our adapter.
    if self.adapter is not None:
        other_path = (f"{self.peer_adapter.get_object_path()}/"
                      f"dev_{self.adapter.address.replace(':', '_')}")
        other = self.peer_adapter.devices.get(other_path)
        if other is not None and other is not self and other.connected:
            await other.disconnect()


Device.disconnect = _disconnect


def main() -> None:
    """bluezoo's ``main`` (1.0.2), with a ``float`` scan interval."""
    parser = argparse.ArgumentParser(description="BlueZoo for smpsim's tests")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("--auto-enable", action="store_true")
    parser.add_argument("--scan-interval", type=float, default=10.0)
    parser.add_argument("-a", "--adapter", dest="adapters", action="append",
                        type=BluetoothAddress, default=[])
    args = parser.parse_args()
    level = logging.INFO + 10 * (args.quiet - args.verbose)
    logging.basicConfig(level=max(logging.DEBUG, min(logging.CRITICAL, level)))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(bz.startup(bus="system", adapters=args.adapters,
                                       auto_enable=args.auto_enable,
                                       scan_interval=args.scan_interval))
    loop.run_forever()


if __name__ == "__main__":
    main()
